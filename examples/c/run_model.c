/* Loads a model library from `kiln compile`, describes its inputs and outputs, runs it on
 * the first input read from a raw file (or a fixed pattern), and prints or writes the first
 * output.
 *
 *   cc run_model.c -I include -L build -lkiln_runtime -o run_model
 *   ./run_model model.so [input.raw [output.raw]]
 *
 * Symbolic input dims are taken as 1. Multi-input models get the pattern on every input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/runtime.h"

static size_t numel(const kiln_tensor *t) {
  size_t n = 1;
  for (int a = 0; a < t->rank; ++a) n *= (size_t)t->shape[a];
  return n;
}

static void print_info(const kiln_model *m, const char *what, int i, kiln_tensor *t) {
  printf("%s %d: %s dtype %d shape [", what, i, t->name, (int)t->dtype);
  for (int a = 0; a < t->rank; ++a) {
    const char *sym = what[0] == 'i' ? kiln_model_input_dim_name(m, i, a) : kiln_model_output_dim_name(m, i, a);
    if (sym) printf("%s%s", a ? ", " : "", sym);
    else printf("%s%lld", a ? ", " : "", (long long)t->shape[a]);
  }
  printf("]\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL.so [INPUT.raw [OUTPUT.raw]]\n", argv[0]);
    return 2;
  }
  kiln_model *m = kiln_model_load(argv[1]);
  if (!m) {
    fprintf(stderr, "error: %s\n", kiln_last_error());
    return 1;
  }
  printf("kiln %s, target %s, %d threads\n", kiln_version(), kiln_model_target(m), kiln_get_num_threads());
  int ni = kiln_model_num_inputs(m), no = kiln_model_num_outputs(m);
  kiln_tensor *in = calloc((size_t)ni, sizeof *in), *out = calloc((size_t)no, sizeof *out);
  int status = 1;
  for (int i = 0; i < ni; ++i) {
    kiln_model_input_info(m, i, &in[i]);
    print_info(m, "input", i, &in[i]);
    for (int a = 0; a < in[i].rank; ++a) {
      if (in[i].shape[a] < 0) in[i].shape[a] = 1;
    }
    in[i].bytes = numel(&in[i]) * kiln_dtype_size(in[i].dtype);
    in[i].data = malloc(in[i].bytes ? in[i].bytes : 1);
    if (i == 0 && argc > 2) {
      FILE *f = fopen(argv[2], "rb");
      if (!f || fread(in[i].data, 1, in[i].bytes, f) != in[i].bytes) {
        fprintf(stderr, "error: cannot read %zu bytes from %s\n", in[i].bytes, argv[2]);
        goto done;
      }
      fclose(f);
    } else {
      for (size_t k = 0; k < in[i].bytes; ++k) ((unsigned char *)in[i].data)[k] = 0;
      if (in[i].dtype == KILN_F32) {
        for (size_t k = 0; k < numel(&in[i]); ++k) ((float *)in[i].data)[k] = (float)(k % 17) / 17.0f - 0.5f;
      }
    }
  }
  for (int o = 0; o < no; ++o) {
    kiln_tensor info;
    kiln_model_output_info(m, o, &info);
    print_info(m, "output", o, &info);
    /* Sized from the model's static shape; a symbolic dim would need a first run to learn it. */
    for (int a = 0; a < info.rank; ++a) {
      if (info.shape[a] < 0) info.shape[a] = 1;
    }
    out[o].bytes = numel(&info) * kiln_dtype_size(info.dtype);
    out[o].data = malloc(out[o].bytes ? out[o].bytes : 1);
  }
  if (kiln_model_run(m, in, ni, out, no) != KILN_OK) {
    fprintf(stderr, "error: %s\n", kiln_last_error());
    goto done;
  }
  if (out[0].dtype == KILN_F32) {
    const float *y = out[0].data;
    size_t best = 0;
    for (size_t k = 1; k < numel(&out[0]); ++k) {
      if (y[k] > y[best]) best = k;
    }
    printf("%s: %zu values, argmax %zu (%g)\n", out[0].name, numel(&out[0]), best, y[best]);
  }
  if (argc > 3) {
    FILE *f = fopen(argv[3], "wb");
    if (!f || fwrite(out[0].data, 1, numel(&out[0]) * kiln_dtype_size(out[0].dtype), f) == 0) {
      fprintf(stderr, "error: cannot write %s\n", argv[3]);
      goto done;
    }
    fclose(f);
  }
  status = 0;
done:
  for (int i = 0; i < ni; ++i) free(in[i].data);
  for (int o = 0; o < no; ++o) free(out[o].data);
  free(in);
  free(out);
  kiln_model_free(m);
  return status;
}
