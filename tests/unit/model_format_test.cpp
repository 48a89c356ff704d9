// The model data of AOT libraries (runtime/model_format.h): every lit graph (subgraphs,
// outer-scope uses, symbolic dims, every attribute kind) survives serialize/deserialize,
// constants are borrowed from the blob, and a damaged blob is a user_error, never a crash.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "graph/parser.h"
#include "graph/printer.h"
#include "runtime/model_format.h"
#include "support/error.h"

namespace kiln {
namespace {

// 64-byte aligned copy of a blob, as the library's data symbol is.
struct Aligned {
  explicit Aligned(const std::string &s)
      : n(s.size()), p(static_cast<uint8_t *>(std::aligned_alloc(64, (s.size() + 63) / 64 * 64 + 64)), std::free) {
    std::memcpy(p.get(), s.data(), s.size());
  }
  size_t n;
  std::unique_ptr<uint8_t, void (*)(void *)> p;
};

std::vector<std::string> lit_models() {
  std::vector<std::string> out;
  auto dir = std::filesystem::path(__FILE__).parent_path().parent_path() / "lit" / "graph";
  for (const auto &e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".kir") continue;
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    out.push_back(ss.str());
  }
  return out;
}

ModelLibraryInfo info() {
  ModelLibraryInfo i;
  i.kiln_version = "test";
  i.target = "x86-64-v3";
  i.arch = "x86_64";
  i.cpu_features = {"avx2", "fma"};
  i.opt_level = 3;
  i.source = "m.onnx";
  return i;
}

TEST(ModelFormat, LitGraphsRoundTrip) {
  auto models = lit_models();
  ASSERT_GE(models.size(), 3u);
  for (auto &text : models) {
    Model m = parse_model(text);
    KernelTable table;
    if (!m.graph->nodes.empty()) table[m.graph->nodes[0].get()] = StepKernel{"k0_Op", {{0, 1}, {2, 0}}, ""};
    Aligned blob(serialize_model(info(), m, table));
    ModelPayload p = deserialize_model(blob.p.get(), blob.n);
    EXPECT_EQ(print_model(p.model), print_model(m));
    EXPECT_EQ(p.info.target, "x86-64-v3");
    EXPECT_EQ(p.info.cpu_features, (std::vector<std::string>{"avx2", "fma"}));
    if (!m.graph->nodes.empty()) {
      ASSERT_EQ(p.kernels.size(), 1u);
      auto &[node, k] = *p.kernels.begin();
      EXPECT_EQ(node, p.model.graph->nodes[0].get());
      EXPECT_EQ(k.name, "k0_Op");
      EXPECT_EQ(k.dim_refs, (std::vector<std::pair<int, int>>{{0, 1}, {2, 0}}));
    }
  }
}

TEST(ModelFormat, ConstantsAreBorrowedAndAligned) {
  Model m = parse_model(
      "graph g(%x: f32[4]) {\n"
      "  init %w: f32[4] = [0, 1.5, 3, 4.5]\n"
      "  %y: f32[4] = Add(%x, %w)\n"
      "  return %y\n"
      "}\n");
  Aligned blob(serialize_model(info(), m, {}));
  ModelPayload p = deserialize_model(blob.p.get(), blob.n);
  const Value *w2 = p.model.graph->find("w");
  ASSERT_TRUE(w2 && w2->constant);
  const uint8_t *data = static_cast<const uint8_t *>(w2->constant->data());
  EXPECT_GE(data, blob.p.get());
  EXPECT_LT(data, blob.p.get() + blob.n);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(data) % 64, 0u);
  EXPECT_EQ(w2->constant->as<float>()[3], 4.5f);
}

// Every prefix, and every single-byte change in the header section, is rejected cleanly
// (or, for changes in names/values the format cannot tell, read as some valid graph).
TEST(ModelFormat, DamagedBlobsAreUserErrors) {
  Model m = parse_model(lit_models()[0]);
  std::string good = serialize_model(info(), m, {});
  for (size_t n = 0; n < good.size(); n += std::max<size_t>(1, good.size() / 200)) {
    Aligned blob(good.substr(0, n));
    try {
      deserialize_model(blob.p.get(), blob.n);
      ADD_FAILURE() << "a blob cut to " << n << " of " << good.size() << " bytes was accepted";
    } catch (const Error &e) {
      EXPECT_EQ(e.kind(), ErrorKind::User) << e.what();
    }
  }
  for (size_t i = 0; i < std::min<size_t>(good.size(), 600); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    Aligned blob(bad);
    try {
      deserialize_model(blob.p.get(), blob.n);
    } catch (const Error &e) {
      EXPECT_EQ(e.kind(), ErrorKind::User) << "byte " << i << ": " << e.what();
    }
  }
}

TEST(ModelFormat, OtherVersionIsRefusedWithAHint) {
  Model m = parse_model(lit_models()[0]);
  std::string s = serialize_model(info(), m, {});
  s[8] = 7;
  Aligned blob(s);
  try {
    read_model_info(blob.p.get(), blob.n);
    FAIL() << "accepted";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("version 7"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kiln
