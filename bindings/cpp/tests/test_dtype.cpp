// Tests of vectors stored as 8-bit codes through the C++ wrapper (panns::Dtype,
// Index::dtype, Index::set_dtype): recall on the approximate path against the exact
// neighbours of the f32 vectors, decoded vectors, files and bytes, errors, and the way back.
#include <panns.hpp>

#ifdef PANNS_MINI_GTEST
#include "mini_gtest.hpp"
#else
#include <gtest/gtest.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace fs = std::filesystem;

namespace {

constexpr std::uint32_t kDim = 32;
constexpr std::size_t kN = 3000, kQ = 100, kK = 10, kBudget = 64;

static_assert(std::is_same<std::underlying_type<panns::Dtype>::type, std::uint32_t>::value,
              "Dtype holds the C codes");
static_assert(static_cast<std::uint32_t>(panns::Dtype::F32) == 0 && static_cast<std::uint32_t>(panns::Dtype::I8) == 1,
              "the PannsDtype codes");

/// The status and message of the panns::Error `f` throws; status -1 if it throws none.
template <class F>
std::pair<int, std::string> ErrorOf(F&& f) {
  try {
    f();
  } catch (const panns::Error& e) {
    return {static_cast<int>(e.status()), e.what()};
  }
  return {-1, ""};
}

/// A scratch directory removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("panns-cpp-dtype-" + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

/// kN points near 16 centres, and kQ queries: stored points moved a little.
struct Data {
  std::vector<float> rows;
  std::vector<std::vector<float>> queries;
  Data() : rows(kN * kDim), queries(kQ, std::vector<float>(kDim)) {
    std::mt19937 rng(77);
    std::normal_distribution<float> gauss;
    std::uniform_int_distribution<std::size_t> pick_centre(0, 15), pick_row(0, kN - 1);
    std::vector<float> centres(16 * kDim);
    for (float& x : centres) x = 3 * gauss(rng);
    for (std::size_t i = 0; i < kN; i++) {
      const std::size_t c = pick_centre(rng);
      for (std::size_t j = 0; j < kDim; j++) rows[i * kDim + j] = centres[c * kDim + j] + 0.5f * gauss(rng);
    }
    for (auto& q : queries) {
      const std::size_t r = pick_row(rng);
      for (std::size_t j = 0; j < kDim; j++) q[j] = rows[r * kDim + j] + 0.05f * gauss(rng);
    }
  }
};

/// An index with 8 trees and a graph of degree 16.
panns::Index BuildWithGraph(const Data& d) {
  panns::Builder b(kDim, panns::Metric::Euclidean);
  b.add_batch(d.rows, kDim);
  panns::BuildOptions o = panns::default_build_options();
  o.n_trees = 8;
  panns::Index idx = b.build(o);
  idx.build_graph(16);
  return idx;
}

/// Recall@kK of `idx` at kBudget against `truth`; `approx` counts the searches that walked
/// the trees and graph rather than scanning every item.
double Recall(const panns::Index& idx, const Data& d, const std::vector<std::vector<panns::Neighbor>>& truth,
              std::size_t* approx) {
  std::size_t hits = 0;
  *approx = 0;
  for (std::size_t q = 0; q < kQ; q++) {
    auto r = idx.search_with_stats(d.queries[q], kK, kBudget);
    *approx += !r.stats.exact_scan && r.stats.budget == kBudget;
    for (const auto& a : r.neighbors) {
      hits += std::any_of(truth[q].begin(), truth[q].end(), [&](const panns::Neighbor& e) { return e.id == a.id; });
    }
  }
  return static_cast<double>(hits) / static_cast<double>(kQ * kK);
}

bool SameResults(const panns::Index& a, const panns::Index& b, const Data& d) {
  for (const auto& q : d.queries) {
    if (a.search(q, kK, kBudget) != b.search(q, kK, kBudget)) return false;
  }
  return true;
}

}  // namespace

TEST(Dtype, RecallFilesAndRoundTrip) {
  const Data d;
  panns::Index idx = BuildWithGraph(d);
  EXPECT_TRUE(idx.dtype() == panns::Dtype::F32);
  std::vector<std::vector<panns::Neighbor>> truth;
  for (const auto& q : d.queries) truth.push_back(idx.linear_search(q, kK));
  std::size_t approx = 0;
  const double r_f32 = Recall(idx, d, truth, &approx);
  EXPECT_EQ(approx, kQ);

  TempDir dir;
  idx.save(dir / "f32.panns");
  idx.set_dtype(panns::Dtype::I8);
  EXPECT_TRUE(idx.dtype() == panns::Dtype::I8);
  EXPECT_EQ(idx.size(), kN);
  EXPECT_EQ(idx.n_trees(), 8u);
  EXPECT_EQ(idx.graph_degree(), 16u);
  const double r_i8 = Recall(idx, d, truth, &approx);
  std::cout << "recall@10 at budget " << kBudget << " of " << kN << " items, graph of degree 16: f32 " << r_f32
            << ", i8 " << r_i8 << "\n";
  EXPECT_EQ(approx, kQ);
  EXPECT_GE(r_f32, 0.8);
  EXPECT_GE(r_i8, 0.8);
  EXPECT_GE(r_i8, r_f32 - 0.06);
  idx.set_dtype(panns::Dtype::I8);  // already codes: nothing to do
  EXPECT_TRUE(idx.dtype() == panns::Dtype::I8);

  // vector() gives the decoded vector: close to the original, not equal to it, and the
  // distances searches return are those to it.
  std::vector<float> lo(d.rows.begin(), d.rows.begin() + kDim), hi = lo;
  for (std::size_t i = 0; i < kN; i++) {
    for (std::size_t j = 0; j < kDim; j++) {
      lo[j] = std::min(lo[j], d.rows[i * kDim + j]);
      hi[j] = std::max(hi[j], d.rows[i * kDim + j]);
    }
  }
  std::vector<std::vector<float>> decoded;
  bool close = true, changed = false;
  for (std::uint32_t i = 0; i < kN; i++) {
    decoded.push_back(idx.vector(i));
    for (std::size_t j = 0; j < kDim; j++) {
      const float err = std::fabs(decoded[i][j] - d.rows[i * kDim + j]);
      close = close && err <= 0.05f * (hi[j] - lo[j]);
      changed = changed || err > 0;
    }
  }
  EXPECT_TRUE(close);
  EXPECT_TRUE(changed);
  for (const auto& n : idx.search(d.queries[0], kK, kBudget)) {
    double s = 0;
    for (std::size_t j = 0; j < kDim; j++) {
      const double x = static_cast<double>(d.queries[0][j]) - decoded[n.id][j];
      s += x * x;
    }
    EXPECT_NEAR(n.distance, std::sqrt(s), 1e-3 * (1 + std::sqrt(s)));
  }

  // Saved, the codes take a quarter of the vector bytes; the file (checksum verified) and
  // the bytes open as codes and answer alike.
  idx.save(dir / "i8.panns");
  const auto f32_size = fs::file_size(dir / "f32.panns"), i8_size = fs::file_size(dir / "i8.panns");
  const std::uintmax_t vector_bytes = kN * kDim * sizeof(float);
  std::cout << "file of " << f32_size << " bytes as f32, " << i8_size << " as i8\n";
  EXPECT_LT(i8_size, f32_size);
  EXPECT_GE(f32_size - i8_size, vector_bytes / 3 * 2);
  EXPECT_EQ(idx.serialized_size(), i8_size);
  panns::Index opened = panns::Index::open(dir / "i8.panns", /*verify=*/true);
  EXPECT_TRUE(opened.dtype() == panns::Dtype::I8);
  EXPECT_EQ(opened.graph_degree(), 16u);
  EXPECT_TRUE(SameResults(idx, opened, d));
  EXPECT_TRUE(opened.vector(2999) == decoded[2999]);
  panns::Index copy = panns::Index::from_bytes(idx.to_bytes(), /*verify=*/true);
  EXPECT_TRUE(copy.dtype() == panns::Dtype::I8);
  EXPECT_TRUE(SameResults(idx, copy, d));
  // The f32 file, opened (memory-mapped) and converted, is the index converted in memory.
  panns::Index mapped = panns::Index::open(dir / "f32.panns");
  EXPECT_TRUE(mapped.dtype() == panns::Dtype::F32);
  mapped.set_dtype(panns::Dtype::I8);
  EXPECT_TRUE(SameResults(idx, mapped, d));

  // Back to f32: the decoded vectors (the rounding stays), trees and graph kept.
  opened.set_dtype(panns::Dtype::F32);
  EXPECT_TRUE(opened.dtype() == panns::Dtype::F32);
  EXPECT_EQ(opened.graph_degree(), 16u);
  EXPECT_TRUE(opened.vector(7) == decoded[7]);
  EXPECT_GE(Recall(opened, d, truth, &approx), 0.8);
  EXPECT_EQ(approx, kQ);
  opened.save(dir / "back.panns");
  EXPECT_LT(i8_size, fs::file_size(dir / "back.panns"));
  EXPECT_TRUE(panns::Index::open(dir / "back.panns").dtype() == panns::Dtype::F32);
}

TEST(Dtype, Errors) {
  panns::Builder b(4, panns::Metric::Angular);
  for (int i = 0; i < 50; i++) b.add({1.0f + static_cast<float>(i), 2.0f, -1.0f, 0.5f * static_cast<float>(i % 7)});
  panns::Index idx = b.build();
  idx.set_dtype(panns::Dtype::I8);
  for (std::uint32_t code : {3u, 99u, 0xffffffffu}) {
    auto err = ErrorOf([&] { idx.set_dtype(static_cast<panns::Dtype>(code)); });
    EXPECT_EQ(err.first, static_cast<int>(PANNS_INVALID_ARGUMENT));
    EXPECT_TRUE(err.second.find("dtype = " + std::to_string(code)) != std::string::npos);
    EXPECT_TRUE(idx.dtype() == panns::Dtype::I8);  // unchanged
  }
  EXPECT_EQ(idx.search({1.0f, 2.0f, -1.0f, 0.0f}, 1)[0].id, 0u);

  panns::Index moved = std::move(idx);
  EXPECT_TRUE(idx.dtype() == panns::Dtype::F32);  // NOLINT(bugprone-use-after-move): moved-from is empty
  auto err = ErrorOf([&] { idx.set_dtype(panns::Dtype::I8); });
  EXPECT_EQ(err.first, static_cast<int>(PANNS_NULL_POINTER));
  EXPECT_TRUE(moved.dtype() == panns::Dtype::I8);
  moved.set_dtype(panns::Dtype::F32);
  EXPECT_TRUE(moved.dtype() == panns::Dtype::F32);
}

TEST(Dtype, I8F32ReRanksFromTheF32Vectors) {
  const Data d;
  panns::Index idx = BuildWithGraph(d);
  std::vector<std::vector<panns::Neighbor>> exact;
  for (const auto& q : d.queries) exact.push_back(idx.linear_search(q, kN));
  idx.set_dtype(panns::Dtype::I8_F32);
  EXPECT_TRUE(idx.dtype() == panns::Dtype::I8_F32);
  std::size_t approx = 0;
  for (std::size_t q = 0; q < kQ; q++) {
    // Exact scans are the f32 ones; every distance a walk returns is that item's f32 distance.
    const auto lin = idx.linear_search(d.queries[q], kK);
    EXPECT_TRUE(std::equal(lin.begin(), lin.end(), exact[q].begin()));
    auto r = idx.search_with_stats(d.queries[q], kK, kBudget);
    approx += !r.stats.exact_scan;
    for (const auto& a : r.neighbors) {
      auto it = std::find_if(exact[q].begin(), exact[q].end(), [&](const panns::Neighbor& e) { return e.id == a.id; });
      ASSERT_TRUE(it != exact[q].end());
      EXPECT_EQ(a.distance, it->distance);
    }
  }
  EXPECT_EQ(approx, kQ);
  const auto v = idx.vector(4);
  EXPECT_TRUE(std::equal(v.begin(), v.end(), d.rows.begin() + 4 * kDim));
  TempDir dir;
  idx.save(dir / "both.panns");
  panns::Index opened = panns::Index::open(dir / "both.panns");
  EXPECT_TRUE(opened.dtype() == panns::Dtype::I8_F32);
  EXPECT_TRUE(SameResults(idx, opened, d));
}
