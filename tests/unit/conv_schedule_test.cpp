// The -O1 conv schedules (lower/conv_schedule.cpp) against -O0, with constant weights
// (so Conv is a FusedConv at -O1): the GEMM on packed im2col panels (3x3, 7x7, strides,
// dilation, groups, asymmetric and automatic pads, 1-D, batches, outputs narrower than a
// vector, few panels with rows split across work items), the pointwise row copies, the
// depthwise rows from a zero-padded plane (strided rows through stride_lanes; output
// widths that leave vector tails), and ConvTranspose with stride == kernel as a GEMM
// scattering to its outputs (other ConvTransposes keep the reference).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "opt_levels.h"

namespace kiln {
namespace {

using test::compile_at, test::expect_close, test::f32_list, test::random_f32;

std::string dims(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// One conv of a model: constant weights of shape `w` (and a bias), ONNX attributes.
struct ConvSpec {
  std::vector<int64_t> w;
  std::string attrs;
  bool bias = true;
  std::string op = "Conv";
};

// Convs on one input.
struct ConvGroup {
  std::vector<int64_t> x;
  std::vector<ConvSpec> convs;
};

// A model of one input %x<g> per group and one conv of it per spec, each returned: the
// n-th conv (counting across groups) is node @y<n> making %y<n>.
std::string conv_model(const std::vector<ConvGroup> &groups, std::mt19937 &rng) {
  std::string params, inits, body, ret;
  int id = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    std::string x = "%x" + std::to_string(g);
    params += (params.empty() ? "" : ", ") + x + ": f32" + dims(groups[g].x);
    for (const ConvSpec &c : groups[g].convs) {
      std::string n = std::to_string(id++);
      // ConvTranspose's weights are [Cin, Cout / group, ...]; Conv's [Cout, Cin / group, ...].
      int64_t cout = c.op == "Conv" ? c.w[0] : c.w[1];
      inits += "  init %w" + n + ": f32" + dims(c.w) + " = " + f32_list(random_f32(c.w, rng, -1, 1)) + "\n";
      std::string args = x + ", %w" + n;
      if (c.bias) {
        inits += "  init %b" + n + ": f32" + dims({cout}) + " = " + f32_list(random_f32({cout}, rng, -1, 1)) + "\n";
        args += ", %b" + n;
      }
      body += "  %y" + n + ": ? = " + c.op + "(" + args + ") @y" + n + " {" + c.attrs + "}\n";
      ret += (ret.empty() ? "%y" : ", %y") + n;
    }
  }
  return "model {opset = 13}\ngraph g(" + params + ") {\n" + inits + body + "  return " + ret + "\n}\n";
}

class ConvSchedule : public ::testing::Test {
 protected:
  std::mt19937 rng{7};

  // The convs on random inputs at -O1 (native and AVX2) vs -O0, all in one model (as
  // expect_o1_matches_o0, with one -O1 compile kept). Sums of at most a few hundred
  // products of numbers in [-1, 1]: reordering them moves the result by far less than
  // 1e-5. Returns the Loop IR of each conv's native -O1 kernel, by node name (y<n>).
  std::map<std::string, std::string> expect_matches(const std::vector<ConvGroup> &groups, int opt_level = 1) {
    std::map<std::string, Tensor> in;
    for (size_t g = 0; g < groups.size(); ++g) {
      in[std::string("x").append(std::to_string(g))] = random_f32(groups[g].x, rng, -1, 1);
    }
    std::string text = conv_model(groups, rng);
    auto want = compile_at(text, 0)->run(in);
    auto native = compile_at(text, opt_level);
    std::vector<std::pair<std::string, const CompiledModel *>> runs = {{"native", native.get()}};
    std::unique_ptr<CompiledModel> avx2;
    if (Jit::host_features().find("+avx2") != std::string::npos) {
      avx2 = compile_at(text, opt_level, "x86-64-v3");
      runs.emplace_back("x86-64-v3", avx2.get());
    }
    for (auto &[target, cm] : runs) {
      auto got = cm->run(in);
      EXPECT_EQ(got.size(), want.size());
      for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
        expect_close(want[i], got[i], 1e-5, 1e-5, target + ": y" + std::to_string(i) + " of\n" + text);
      }
    }
    std::map<std::string, std::string> ir;
    for (const std::string &k : native->kernel_ir()) {
      size_t q = k.find(" '"), e = k.find("'\n");
      if (q != std::string::npos && e != std::string::npos && q < e) ir[k.substr(q + 2, e - q - 2)] = k;
    }
    return ir;
  }
};

TEST_F(ConvSchedule, ThreeByThreeStrideOneAndTwo) {
  // 11 output channels: one full row tile and a tail (8 + 3; AVX2 6 + 5); 13 x 13 = 169
  // output pixels: panels of 32 (AVX2: 16) columns, the last with 9 valid.
  auto ir = expect_matches({{{1, 5, 13, 13},
                             {{{11, 5, 3, 3}, "pads = [1, 1, 1, 1]"},
                              {{11, 5, 3, 3}, "pads = [1, 1, 1, 1], strides = [2, 2]"},
                              {{11, 5, 3, 3}, "strides = [2, 2]", false}}}});
  EXPECT_NE(ir["y0"].find("panel"), std::string::npos);
}

TEST_F(ConvSchedule, PointwiseStrideOneAndTwo) {
  // Stride 1 with at least a tile of pixels (9 x 13, batch 2) reads the input in place,
  // the last tile overlapping the one before (117 pixels: a whole tile; AVX2 and 10 x 10:
  // a one-vector tile ending at the last pixel); fewer pixels (4 x 5: a single panel, so
  // the 37 rows (4 row tiles + 5) split over work items) copy rows of the input; stride 2
  // packs a strided im2col panel. At -O1 and with packed weights at -O3 (the 5 rows past
  // the row blocks run single-row tiles, narrow column included).
  std::vector<ConvGroup> convs = {{{2, 16, 9, 13}, {{{37, 16, 1, 1}, ""}, {{37, 16, 1, 1}, "strides = [2, 2]"}}},
                                  {{1, 16, 4, 5}, {{{37, 16, 1, 1}, ""}, {{37, 16, 1, 1}, "strides = [2, 2]", false}}},
                                  {{2, 24, 10, 10}, {{{37, 24, 1, 1}, ""}}}};
  auto ir = expect_matches(convs);
  EXPECT_EQ(ir["y0"].find("panel"), std::string::npos) << ir["y0"];
  EXPECT_NE(ir["y2"].find("panel"), std::string::npos) << ir["y2"];
  expect_matches(convs, 3);
}

TEST_F(ConvSchedule, SevenBySevenStrideTwoPadThree) {
  expect_matches({{{1, 3, 29, 31}, {{{8, 3, 7, 7}, "pads = [3, 3, 3, 3], strides = [2, 2]"}}}});
}

TEST_F(ConvSchedule, DilationAndGroups) {
  expect_matches({{{1, 4, 15, 17},
                   {{{6, 4, 3, 3}, "dilations = [2, 2], pads = [2, 2, 2, 2]"},
                    {{6, 4, 3, 3}, "dilations = [2, 3], pads = [1, 0, 2, 3], strides = [1, 2]"}}},
                  {{2, 6, 11, 12},
                   {{{10, 3, 3, 3}, "group = 2, pads = [1, 1, 1, 1]"},
                    {{9, 2, 3, 3}, "group = 3, strides = [2, 2]"},
                    {{9, 2, 1, 1}, "group = 3"}}}});
}

TEST_F(ConvSchedule, AsymmetricAndAutomaticPads) {
  expect_matches({{{1, 3, 10, 11},
                   {{{5, 3, 3, 3}, "pads = [0, 1, 2, 3]"},
                    {{5, 3, 3, 3}, "auto_pad = \"SAME_UPPER\", strides = [2, 2]"},
                    {{5, 3, 4, 4}, "auto_pad = \"SAME_UPPER\""},
                    {{5, 3, 3, 3}, "auto_pad = \"SAME_LOWER\", strides = [2, 2]"}}}});
}

TEST_F(ConvSchedule, PadsWiderThanTheKernel) {
  // Output rows and columns that see only padding; a dilated kernel wider than the input.
  expect_matches({{{1, 3, 6, 7},
                   {{{5, 3, 3, 3}, "pads = [3, 0, 1, 4]"},
                    {{5, 3, 3, 3}, "dilations = [3, 4], pads = [2, 5, 2, 5]"},
                    {{5, 3, 1, 1}, "pads = [1, 2, 1, 2], strides = [2, 2]"}}},
                  {{1, 7, 5, 9},
                   {{{7, 1, 3, 3}, "group = 7, pads = [4, 3, 2, 5]"},
                    {{7, 1, 1, 1}, "group = 7, pads = [1, 2, 0, 1], strides = [2, 2]"}}}});
}

TEST_F(ConvSchedule, OneDimensional) {
  expect_matches({{{2, 4, 37},
                   {{{9, 4, 5}, "pads = [2, 2]"},
                    {{9, 4, 3}, "dilations = [2], pads = [1, 3], strides = [2]"},
                    {{9, 4, 1}, ""},
                    {{10, 2, 3}, "group = 2"},
                    {{4, 1, 3}, "group = 4, pads = [1, 1]"}}}});
}

TEST_F(ConvSchedule, BatchOfTwo) {
  expect_matches({{{2, 5, 9, 9}, {{{7, 5, 3, 3}, "pads = [1, 1, 1, 1]"}, {{20, 5, 1, 1}, ""}}}});
}

TEST_F(ConvSchedule, OutputsNarrowerThanAVector) {
  // 5-, 2- and 3-wide output rows: one panel spans several rows of the output.
  expect_matches({{{1, 3, 5, 5}, {{{20, 3, 3, 3}, "pads = [1, 1, 1, 1]"}, {{20, 3, 3, 3}, "strides = [2, 2]"}}},
                  {{1, 8, 2, 3}, {{{9, 8, 1, 1}, ""}, {{9, 8, 2, 2}, ""}}}});
}

TEST_F(ConvSchedule, DepthwiseOddWidths) {
  // 7 channels, one per group: 3x3 stride 1 and 2, 5x5 stride 1 and 2 on widths 13, 23
  // and 35: output rows 7 to 35 wide end in a partial vector (or are shorter than one),
  // with AVX-512's 16 lanes and AVX2's 8 alike.
  std::vector<ConvSpec> dw = {{{7, 1, 3, 3}, "group = 7, pads = [1, 1, 1, 1]"},
                              {{7, 1, 3, 3}, "group = 7, pads = [1, 1, 1, 1], strides = [2, 2]"},
                              {{7, 1, 5, 5}, "group = 7, pads = [2, 2, 2, 2]"},
                              {{7, 1, 5, 5}, "group = 7, pads = [2, 2, 2, 2], strides = [2, 2]", false}};
  auto ir = expect_matches({{{1, 7, 9, 13}, dw}, {{1, 7, 9, 23}, dw}, {{1, 7, 9, 35}, dw}});
  EXPECT_NE(ir["y8"].find("plane"), std::string::npos);
  EXPECT_EQ(ir["y8"].find("stride_lanes"), std::string::npos);
  EXPECT_NE(ir["y9"].find("stride_lanes"), std::string::npos);
}

TEST_F(ConvSchedule, DepthwiseBatchDilationAndPads) {
  expect_matches({{{2, 7, 8, 19},
                   {{{7, 1, 3, 3}, "dilations = [2, 2], group = 7, pads = [2, 2, 2, 2]"},
                    {{7, 1, 3, 3}, "group = 7, pads = [0, 1, 2, 0]"},
                    {{7, 1, 3, 3}, "auto_pad = \"SAME_UPPER\", group = 7, strides = [2, 2]"},
                    {{7, 1, 3, 3}, "group = 7, strides = [3, 3]"}}}});
}

TEST_F(ConvSchedule, DepthwiseSmallPlanesAcrossChannels) {
  // Output rows narrower than a vector with at least a vector of channels: 5x5 kernels on
  // rows of 7 (and anything narrower than 4 lanes) run vectors across channels (a
  // pixel-major scratch of the padded planes); 3x3 kernels on rows of 7 run quarter
  // vectors (AVX2: half) along the row, rows of 14 half vectors. 20 channels: with 16 lanes
  // the last block overlaps the first; with AVX2's 8, blocks 8 + 8 + (4 overlapped). 32
  // channels: whole blocks. Widths 7 and 14, 3x3 and 5x5, stride 2, dilation, batch 2,
  // asymmetric pads.
  std::vector<ConvSpec> dw20 = {{{20, 1, 3, 3}, "group = 20, pads = [1, 1, 1, 1]"},
                                {{20, 1, 5, 5}, "group = 20, pads = [2, 2, 2, 2]"},
                                {{20, 1, 3, 3}, "group = 20, pads = [1, 0, 1, 2], strides = [2, 2]"},
                                {{20, 1, 3, 3}, "dilations = [2, 2], group = 20, pads = [2, 2, 2, 2]"}};
  std::vector<ConvSpec> dw32 = {{{32, 1, 3, 3}, "group = 32, pads = [1, 1, 1, 1]"},
                                {{32, 1, 5, 5}, "group = 32, pads = [2, 2, 2, 2], strides = [2, 2]"}};
  auto ir = expect_matches({{{2, 20, 7, 7}, dw20}, {{1, 20, 14, 14}, dw20}, {{1, 32, 7, 14}, dw32}});
  EXPECT_NE(ir["y1"].find("planes"), std::string::npos) << ir["y1"];
  EXPECT_EQ(ir["y0"].find("planes"), std::string::npos) << ir["y0"];
}

TEST_F(ConvSchedule, OnePixelConvsAreMatrixVectorProducts) {
  // 1x1 convs of a 1x1 image with packed weights (-O2+): 21 output channels are two whole
  // row blocks of 8 and 5 unpacked rows (AVX2: 3 blocks of 6 + 3); batch 2; with and
  // without a bias; a larger one that runs its blocks in parallel.
  auto ir = expect_matches({{{2, 40, 1, 1}, {{{21, 40, 1, 1}, ""}, {{16, 40, 1, 1}, "", false}}},
                            {{1, 600, 1, 1}, {{{200, 600, 1, 1}, ""}}}},
                           3);
  EXPECT_EQ(ir["y0"].find("panel"), std::string::npos) << ir["y0"];
}

TEST_F(ConvSchedule, FewPixelsRunTheGemmTransposed) {
  // At most 64 output pixels (256 when strided) and a multiple of the panel width (32; AVX2
  // 16) of output channels (-O2+): pixels are the GEMM rows, channels the vector lanes. Row
  // tiles divide the pixels where one of 6..8 rows does (49 = 7 x 7, 196 = 28 x 7; AVX2:
  // 6 x 8 + an overlapping tile); otherwise the last tile overlaps the one before (110
  // pixels). 3x3 on 7x7 (rows of 7: a quarter vector and single elements in the im2col
  // copy), stride 2 onto 7x7 (odd input width), 1x1 on 7x7 and on 5x5 read in place (no
  // im2col matrix), with and without bias, batch 2; 3x3 and 1x1 stride 2 onto 14x14 and
  // 1x1 stride 2 onto 10x11 and onto 20x20 (400 pixels: strided 1x1 convs up to 1024);
  // 40 channels keep the row-block GEMM.
  auto ir = expect_matches({{{2, 24, 7, 7}, {{{64, 24, 3, 3}, "pads = [1, 1, 1, 1]"}, {{32, 24, 1, 1}, "", false}}},
                            {{1, 16, 14, 13}, {{{32, 16, 3, 3}, "pads = [1, 1, 1, 1], strides = [2, 2]"}}},
                            {{1, 8, 5, 5}, {{{32, 8, 1, 1}, ""}, {{40, 8, 1, 1}, ""}}},
                            {{1, 20, 28, 28},
                             {{{32, 20, 3, 3}, "pads = [1, 1, 1, 1], strides = [2, 2]"}, {{64, 20, 1, 1}, "strides = [2, 2]"}}},
                            {{2, 12, 20, 22}, {{{32, 12, 1, 1}, "strides = [2, 2]", false}}},
                            {{1, 16, 40, 40}, {{{32, 16, 1, 1}, "strides = [2, 2]"}}}},
                           3);
  EXPECT_NE(ir["y0"].find("col"), std::string::npos) << ir["y0"];
  EXPECT_EQ(ir["y1"].find("col"), std::string::npos) << ir["y1"];
  EXPECT_EQ(ir["y3"].find("col"), std::string::npos) << ir["y3"];
  EXPECT_NE(ir["y4"].find("panel"), std::string::npos) << ir["y4"];
  EXPECT_NE(ir["y5"].find("col"), std::string::npos) << ir["y5"];
  EXPECT_EQ(ir["y5"].find("rows"), std::string::npos) << ir["y5"];
  EXPECT_NE(ir["y7"].find("col"), std::string::npos) << ir["y7"];
}

TEST_F(ConvSchedule, LongReductionsOfTransposedGemmsRunInBlocks) {
  // Transposed conv GEMMs (few pixels) with K > 384 run per (panel, chunk of row tiles),
  // K in blocks with partial sums per item (gemm_panel_items): 3x3 over 64 channels on 7x7
  // (K = 576: three blocks of 192; one panel, so the 7 row tiles split into chunks), batch 2;
  // 1x1 over 448 channels read in place (two panels); 3x3 stride 2 over 48 channels onto 7x7
  // (K = 432); 1x1 over 400 channels on 5x5 (25 pixels: three row tiles of 8 and a one-row
  // tile in the last chunk; AVX2: five of 5), without bias.
  auto ir = expect_matches({{{2, 64, 7, 7}, {{{32, 64, 3, 3}, "pads = [1, 1, 1, 1]"}}},
                            {{1, 448, 7, 7}, {{{64, 448, 1, 1}, ""}}},
                            {{1, 48, 14, 13}, {{{64, 48, 3, 3}, "pads = [1, 1, 1, 1], strides = [2, 2]"}}},
                            {{1, 400, 5, 5}, {{{32, 400, 1, 1}, "", false}}}},
                           3);
  for (const char *y : {"y0", "y1", "y2", "y3"}) EXPECT_NE(ir[y].find("part"), std::string::npos) << ir[y];
}

TEST_F(ConvSchedule, BatchesFoldIntoTransposedGemmRowsWhereWeightsOutweighThem) {
  // A static batch whose images' pixels are fewer than the output channels runs as one
  // transposed GEMM over all images' rows (no loop over images): 3x3 with an im2col matrix
  // per image; 1x1 read in place; 1x1 over 400 channels on 3x3 maps, batch 3 (27 rows: K in
  // blocks, a narrower last row tile); 3x3 stride 2 over 64 channels (K = 576, blocks); 1x1
  // stride 2 onto rows of 40 (the general im2col packer). 32 channels on 2 x 49 pixels stay
  // image by image.
  auto ir = expect_matches({{{2, 16, 4, 4}, {{{64, 16, 3, 3}, "pads = [1, 1, 1, 1]"}, {{64, 16, 1, 1}, "", false}}},
                            {{3, 400, 3, 3}, {{{96, 400, 1, 1}, ""}}},
                            {{2, 64, 5, 5}, {{{64, 64, 3, 3}, "pads = [1, 1, 1, 1], strides = [2, 2]"}}},
                            {{2, 24, 1, 80}, {{{96, 24, 1, 1}, "strides = [2, 2]"}}},
                            {{2, 24, 7, 7}, {{{32, 24, 1, 1}, ""}}}},
                           3);
  for (const char *y : {"y0", "y1", "y2", "y3", "y4"}) EXPECT_EQ(ir[y].find("for (n"), std::string::npos) << ir[y];
  EXPECT_NE(ir["y4"].find("seg"), std::string::npos) << ir["y4"];
  EXPECT_NE(ir["y5"].find("for (n"), std::string::npos) << ir["y5"];
}

TEST_F(ConvSchedule, SmallMapsPackTheirIm2colRowByRow) {
  // Transposed GEMMs on maps with rows of at most 32 build the im2col matrix per (channel,
  // tap, output row), each column's padding known when compiling: dilation 2 with
  // asymmetric pads (7x8 output), 5x5 stride 2 with asymmetric pads (5x3), batch 2 with
  // 20 channels (two groups of 8 and one of 4), 3x3 stride 2 onto 7x7 from 14x13.
  auto ir = expect_matches({{{2, 20, 9, 9},
                             {{{64, 20, 3, 3}, "dilations = [2, 2], pads = [2, 1, 0, 2]"},
                              {{32, 20, 5, 5}, "pads = [2, 1, 2, 0], strides = [2, 2]", false}}},
                            {{1, 16, 14, 13}, {{{32, 16, 3, 3}, "pads = [1, 1, 1, 1], strides = [2, 2]"}}}},
                           3);
  for (const char *y : {"y0", "y1", "y2"}) {
    EXPECT_NE(ir[y].find("col"), std::string::npos) << ir[y];
    EXPECT_EQ(ir[y].find("seg"), std::string::npos) << ir[y];
  }
}

TEST_F(ConvSchedule, FewInputChannelsRunDirectRows) {
  // Stem-like convs (<= 4 input channels, rows >= a vector): each output row from padded
  // copies of its input rows, 8 (packed: mr) output channels per pass. Rows of 20 end in an
  // overlapping vector; 7x7 stride 2 pad 3; a dilated one; at -O1 (plain weights) and -O3
  // (packed; AVX2's 6-row blocks take the GEMM for 16 channels).
  std::vector<ConvGroup> convs = {
      {{1, 3, 40, 40},
       {{{16, 3, 3, 3}, "pads = [1, 1, 1, 1], strides = [2, 2]"},
        {{24, 3, 7, 7}, "pads = [3, 3, 3, 3], strides = [2, 2]"},
        {{16, 3, 3, 3}, "dilations = [2, 2], pads = [2, 2, 2, 2]", false}}},
      {{2, 4, 9, 35}, {{{8, 4, 3, 3}, "pads = [0, 1, 2, 1]"}}}};
  auto ir = expect_matches(convs, 1);
  EXPECT_NE(ir["y0"].find("rows"), std::string::npos) << ir["y0"];
  expect_matches(convs, 3);
}

TEST_F(ConvSchedule, StridedConvsRunDirectRows) {
  // Strided convs with whole groups of 8 (packed: mr) output channels run direct rows from
  // phase-split scratch rows (col mod stride): 3x3 / 1x1 / 5x5 stride 2, stride 3, stride
  // (2, 1), dilation 2 with stride 2, asymmetric pads, batch 2. Output rows of 18 (a vector
  // and an overlapping one), 14 and 9 (AVX-512: half vectors, a pair overlapping) and 36.
  std::vector<ConvGroup> convs = {
      {{2, 20, 35, 36},
       {{{16, 20, 3, 3}, "pads = [1, 1, 1, 1], strides = [2, 2]"},
        {{16, 20, 1, 1}, "strides = [2, 2]", false},
        {{24, 20, 5, 5}, "pads = [2, 1, 0, 2], strides = [2, 2]"},
        {{8, 20, 3, 3}, "pads = [1, 1, 1, 1], strides = [3, 3]"},
        {{16, 20, 3, 3}, "pads = [1, 1, 1, 1], strides = [2, 1]"},
        {{8, 20, 3, 3}, "dilations = [2, 2], pads = [2, 2, 2, 2], strides = [2, 2]"}}},
      {{1, 12, 28, 28}, {{{16, 12, 3, 3}, "pads = [1, 1, 1, 1], strides = [2, 2]"}}},
      {{1, 9, 18, 19}, {{{8, 9, 3, 3}, "strides = [2, 2]"}}},
      // Many output channels on a small image, batch of 2.
      {{2, 16, 6, 18},
       {{{64, 16, 3, 3}, "pads = [1, 1, 1, 1], strides = [2, 2]"}, {{128, 16, 1, 1}, "strides = [2, 2]"}}}};
  auto ir = expect_matches(convs, 1);
  for (const char *y : {"y0", "y1", "y2", "y3", "y4", "y5", "y6", "y7", "y8"}) {
    EXPECT_NE(ir[y].find("rows"), std::string::npos) << y << ":\n" << ir[y];
    EXPECT_EQ(ir[y].find("panel"), std::string::npos) << y << ":\n" << ir[y];
  }
  expect_matches(convs, 3);
}

TEST_F(ConvSchedule, ChannelMultiplierUsesGemm) {
  // One input channel per group but two outputs: the GEMM, not the depthwise rows.
  auto ir = expect_matches({{{1, 4, 9, 17}, {{{8, 1, 3, 3}, "group = 4, pads = [1, 1, 1, 1]"}}}});
  EXPECT_NE(ir["y0"].find("panel"), std::string::npos);
  EXPECT_EQ(ir["y0"].find("plane"), std::string::npos);
}

TEST_F(ConvSchedule, SymbolicImageSize) {
  // One compiled model for every image size: the GEMM, pointwise and depthwise schedules
  // with extents (and SAME_UPPER's pads) known only at run time.
  std::string text = conv_model({{{1, 5, 1, 1},
                                  {{{11, 5, 3, 3}, "pads = [1, 1, 1, 1]"},
                                   {{11, 5, 1, 1}, ""},
                                   {{5, 1, 3, 3}, "group = 5, pads = [1, 1, 1, 1], strides = [2, 2]"},
                                   {{5, 1, 3, 3}, "auto_pad = \"SAME_UPPER\", group = 5"},
                                   {{6, 5, 3, 3}, "auto_pad = \"SAME_UPPER\", strides = [2, 2]"}}}},
                                rng);
  text.replace(text.find("f32[1, 5, 1, 1]"), 15, "f32[n, 5, h, w]");
  auto o0 = compile_at(text, 0), o1 = compile_at(text, 1), avx2 = compile_at(text, 1, "x86-64-v3");
  for (auto shape : {std::vector<int64_t>{1, 5, 11, 13}, std::vector<int64_t>{2, 5, 6, 35}}) {
    std::map<std::string, Tensor> in = {{"x0", random_f32(shape, rng, -1, 1)}};
    auto want = o0->run(in), got = o1->run(in), got2 = avx2->run(in);
    for (size_t i = 0; i < want.size(); ++i) {
      expect_close(want[i], got[i], 1e-5, 1e-5, "native: y" + std::to_string(i));
      expect_close(want[i], got2[i], 1e-5, 1e-5, "x86-64-v3: y" + std::to_string(i));
    }
  }
}

TEST_F(ConvSchedule, ConvTransposeStrideEqualsKernel) {
  // k2 s2 and k3x1 s3x1: a GEMM of (Cout x taps) rows scattered to the output; k3 s2 and
  // k2 s2 with pads keep the reference. A batch of 2.
  auto ir = expect_matches({{{2, 6, 5, 7},
                             {{{6, 4, 2, 2}, "strides = [2, 2]", true, "ConvTranspose"},
                              {{6, 5, 3, 1}, "kernel_shape = [3, 1], strides = [3, 1]", false, "ConvTranspose"},
                              {{6, 4, 3, 3}, "strides = [2, 2]", true, "ConvTranspose"},
                              {{6, 4, 2, 2}, "pads = [1, 0, 0, 1], strides = [2, 2]", true, "ConvTranspose"}}}});
  // GEMM tiles keep their sums in `acc` registers; the reference has none.
  EXPECT_NE(ir["y0"].find("acc"), std::string::npos);
  EXPECT_NE(ir["y1"].find("acc"), std::string::npos);
  EXPECT_EQ(ir["y2"].find("acc"), std::string::npos);
  EXPECT_EQ(ir["y3"].find("acc"), std::string::npos);
}

}  // namespace
}  // namespace kiln
