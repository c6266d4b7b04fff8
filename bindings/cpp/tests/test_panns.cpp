// Tests of the C++ wrapper (bindings/cpp/include/panns.hpp): errors as exceptions, moves,
// searches against brute force, files, concurrent searches and the cross-language fixture.
#include <panns.hpp>

#ifdef PANNS_MINI_GTEST
#include "mini_gtest.hpp"
#else
#include <gtest/gtest.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace fs = std::filesystem;

namespace {

constexpr std::uint32_t kDim = 12;

std::vector<float> RandomRows(std::size_t n, std::size_t dim, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss;
  std::vector<float> v(n * dim);
  for (float& x : v) x = gauss(rng);
  return v;
}

panns::Index BuildIndex(const std::vector<float>& rows, panns::Metric metric, std::uint32_t trees) {
  panns::Builder b(kDim, metric);
  b.add_batch(rows, kDim);
  panns::BuildOptions o = panns::default_build_options();
  o.n_trees = trees;
  return b.build(o);
}

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

bool Contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

#define EXPECT_PANNS_ERROR(stmt, want_status, needle)        \
  do {                                                       \
    auto err_ = ErrorOf([&] { stmt; });                      \
    EXPECT_EQ(err_.first, static_cast<int>(want_status));    \
    EXPECT_TRUE(Contains(err_.second, needle));              \
  } while (0)

/// A scratch directory removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("panns-cpp-test-" + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

std::vector<char> ReadBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void WriteBytes(const std::string& path, const char* data, std::size_t n) {
  std::ofstream f(path, std::ios::binary);
  f.write(data, static_cast<std::streamsize>(n));
}

}  // namespace

TEST(Panns, VersionAndDefaults) {
  EXPECT_FALSE(panns::version().empty());
  EXPECT_TRUE(Contains(panns::version(), "."));
  panns::BuildOptions o = panns::default_build_options();
  EXPECT_EQ(o.n_trees, 32u);
  EXPECT_EQ(o.seed, 42u);
  static_assert(!std::is_copy_constructible_v<panns::Index>, "Index is move-only");
  static_assert(!std::is_copy_constructible_v<panns::Builder>, "Builder is move-only");
  static_assert(std::is_nothrow_move_constructible_v<panns::Index>, "noexcept moves");
  static_assert(std::is_nothrow_move_assignable_v<panns::Builder>, "noexcept moves");
}

TEST(Panns, BuilderErrorsAreExceptions) {
  EXPECT_PANNS_ERROR(panns::Builder(0, panns::Metric::Euclidean), PANNS_INVALID_ARGUMENT, "dimension 0");
  EXPECT_PANNS_ERROR(panns::Builder(4, static_cast<panns::Metric>(9)), PANNS_INVALID_ARGUMENT, "metric code 9");

  panns::Builder b(kDim, panns::Metric::Angular);
  std::vector<float> v(kDim, 1.0f);
  EXPECT_PANNS_ERROR(b.add(std::vector<float>(kDim - 1, 1.0f)), PANNS_DIMENSION_MISMATCH, "expected 12");
  v[4] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_PANNS_ERROR(b.add(v), PANNS_NON_FINITE, "component 4");
  EXPECT_PANNS_ERROR(b.add(std::vector<float>(kDim, 0.0f)), PANNS_ZERO_VECTOR, "zero length");
  EXPECT_PANNS_ERROR(b.add(nullptr, kDim), PANNS_NULL_POINTER, "vec");
  EXPECT_PANNS_ERROR(b.add_batch(std::vector<float>(kDim + 1, 1.0f), kDim), PANNS_DIMENSION_MISMATCH, "multiple");
  EXPECT_PANNS_ERROR(b.add_batch(std::vector<float>(2 * kDim, 1.0f), 0), PANNS_DIMENSION_MISMATCH, "multiple");
  EXPECT_PANNS_ERROR(b.build(), PANNS_EMPTY, "empty");
  EXPECT_EQ(b.size(), 0u);

  v[4] = 2.0f;
  EXPECT_EQ(b.add(v), 0u);
  EXPECT_EQ(b.add(v), 1u);
  panns::BuildOptions o = panns::default_build_options();
  o.n_trees = 0;
  EXPECT_PANNS_ERROR(b.build(o), PANNS_INVALID_ARGUMENT, "n_trees");
  o = panns::default_build_options();
  o.split = 5;
  EXPECT_PANNS_ERROR(b.build(o), PANNS_INVALID_ARGUMENT, "split");
  EXPECT_EQ(b.size(), 2u);
  panns::Index idx = b.build();
  EXPECT_EQ(idx.size(), 2u);
  EXPECT_EQ(b.size(), 0u);  // the vectors moved into the index; the builder is reusable
  EXPECT_EQ(b.add(v), 0u);
}

TEST(Panns, SearchMatchesBruteForce) {
  const std::size_t n = 600, k = 10;
  auto rows = RandomRows(n, kDim, 1);
  panns::Index idx = BuildIndex(rows, panns::Metric::Euclidean, 8);
  EXPECT_EQ(idx.size(), n);
  EXPECT_EQ(idx.dim(), kDim);
  EXPECT_TRUE(idx.metric() == panns::Metric::Euclidean);
  EXPECT_EQ(idx.n_trees(), 8u);

  // A stored vector finds itself.
  auto self = idx.search(idx.vector(77), k);
  ASSERT_EQ(self.size(), k);
  EXPECT_EQ(self[0].id, 77u);
  EXPECT_EQ(self[0].distance, 0.0f);
  EXPECT_TRUE(std::is_sorted(self.begin(), self.end(),
                             [](const panns::Neighbor& a, const panns::Neighbor& b) { return a.distance < b.distance; }));

  auto q = RandomRows(1, kDim, 2);
  std::vector<std::pair<float, std::uint32_t>> truth;
  for (std::uint32_t i = 0; i < n; i++) {
    double s = 0;
    for (std::size_t j = 0; j < kDim; j++) {
      double d = static_cast<double>(q[j]) - rows[i * kDim + j];
      s += d * d;
    }
    truth.emplace_back(static_cast<float>(std::sqrt(s)), i);
  }
  std::sort(truth.begin(), truth.end());
  auto exact = idx.linear_search(q, k);
  ASSERT_EQ(exact.size(), k);
  for (std::size_t i = 0; i < k; i++) {
    EXPECT_EQ(exact[i].id, truth[i].second);
    EXPECT_NEAR(exact[i].distance, truth[i].first, 1e-4f);
  }
  // The exact-scan switch: a budget of half the items scans every item (= exact);
  // one less walks the trees.
  auto scan = idx.search_with_stats(q, k, n / 2);
  EXPECT_TRUE(scan.stats.exact_scan);
  EXPECT_EQ(scan.stats.scored, n);
  EXPECT_TRUE(scan.neighbors == exact);
  auto walk = idx.search_with_stats(q, k, n / 2 - 1);
  EXPECT_FALSE(walk.stats.exact_scan);
  EXPECT_EQ(walk.stats.budget, n / 2 - 1);
  EXPECT_LT(walk.stats.scored, n);
  // An empty query is a dimension problem, not a NULL argument.
  EXPECT_PANNS_ERROR(idx.search(std::vector<float>{}, k), PANNS_DIMENSION_MISMATCH, "query is empty");
  EXPECT_PANNS_ERROR(idx.search_with_stats(std::vector<float>{}, k), PANNS_DIMENSION_MISMATCH, "expected 12");
  EXPECT_EQ(idx.search(q.data(), q.size(), 3).size(), 3u);

  EXPECT_PANNS_ERROR(idx.search(q, 0), PANNS_INVALID_ARGUMENT, "k must be at least 1");
  EXPECT_PANNS_ERROR(idx.search(std::vector<float>(kDim + 2, 1.0f), k), PANNS_DIMENSION_MISMATCH, "got 14");
  EXPECT_PANNS_ERROR(idx.linear_search(std::vector<float>(3, 1.0f), k), PANNS_DIMENSION_MISMATCH, "got 3");
  EXPECT_PANNS_ERROR(idx.search(nullptr, kDim, k), PANNS_NULL_POINTER, "query");
  auto nanq = q;
  nanq[1] = std::numeric_limits<float>::infinity();
  EXPECT_PANNS_ERROR(idx.search(nanq, k), PANNS_NON_FINITE, "component 1");
  EXPECT_PANNS_ERROR(idx.vector(static_cast<std::uint32_t>(n)), PANNS_OUT_OF_RANGE, "600");
  // k far beyond the index: every candidate (the budget is reached leaf by leaf), and
  // no huge allocation.
  auto many = idx.search(q, std::numeric_limits<std::size_t>::max() / 8, 50);
  EXPECT_GE(many.size(), 50u);
  EXPECT_LE(many.size(), n);
  EXPECT_EQ(idx.linear_search(q, 100000).size(), n);
}

// Recall of the approximate path (the stats say the trees were walked) against linear
// search, by ids. Random candidates would give budget / n = 10%.
TEST(Panns, RecallOnTheApproximatePath) {
  const std::size_t n = 5000, nq = 100, k = 10, budget = 500;
  auto rows = RandomRows(n, kDim, 21);
  panns::Index idx = BuildIndex(rows, panns::Metric::Euclidean, 16);
  auto qs = RandomRows(nq, kDim, 22);
  std::size_t hits = 0, approx = 0;
  for (std::size_t q = 0; q < nq; q++) {
    auto r = idx.search_with_stats(qs.data() + q * kDim, kDim, k, budget);
    auto exact = idx.linear_search(qs.data() + q * kDim, kDim, k);
    approx += !r.stats.exact_scan && r.stats.budget == budget;
    for (const auto& a : r.neighbors) {
      hits += std::any_of(exact.begin(), exact.end(), [&](const panns::Neighbor& e) { return e.id == a.id; });
    }
  }
  const double recall = static_cast<double>(hits) / static_cast<double>(nq * k);
  std::cout << "recall@10 at budget " << budget << " of " << n << " items, 16 trees: " << recall << "\n";
  EXPECT_EQ(approx, nq);
  EXPECT_GE(recall, 0.85);
}

TEST(Panns, BytesRoundTrip) {
  auto rows = RandomRows(300, kDim, 23);
  panns::Index idx = BuildIndex(rows, panns::Metric::Angular, 4);
  std::vector<std::uint8_t> bytes = idx.to_bytes();
  EXPECT_EQ(bytes.size(), idx.serialized_size());
  panns::Index copy = panns::Index::from_bytes(bytes, /*verify=*/true);
  std::fill(bytes.begin(), bytes.end(), std::uint8_t{0});  // copied by the library
  EXPECT_EQ(copy.size(), 300u);
  auto q = RandomRows(1, kDim, 24);
  EXPECT_TRUE(copy.search(q, 5, 40) == idx.search(q, 5, 40));
  EXPECT_PANNS_ERROR(panns::Index::from_bytes(bytes), PANNS_CORRUPT, "");
  EXPECT_PANNS_ERROR(panns::Index::from_bytes(nullptr, 0), PANNS_CORRUPT, "");
  EXPECT_EQ(std::string(panns::status_string(PANNS_CORRUPT)), "corrupt index or dataset");
}

TEST(Panns, SearchBatch) {
  auto rows = RandomRows(5, kDim, 3);
  panns::Index idx = BuildIndex(rows, panns::Metric::Angular, 3);
  auto qs = RandomRows(7, kDim, 4);
  auto batch = idx.search_batch(qs, 8);
  ASSERT_EQ(batch.size(), 7u);
  for (std::size_t r = 0; r < 7; r++) {
    std::vector<float> q(qs.begin() + r * kDim, qs.begin() + (r + 1) * kDim);
    EXPECT_EQ(batch[r].size(), 5u);  // padding dropped: 5 items only
    EXPECT_TRUE(batch[r] == idx.search(q, 8));
  }
  EXPECT_TRUE(idx.search_batch(qs.data(), 0, kDim, 8).empty());
  // k far beyond the index: k is clamped to the index size before allocating (k = 1e8
  // used to allocate n_queries * k entries).
  auto huge = idx.search_batch(qs, 100000000);
  ASSERT_EQ(huge.size(), 7u);
  EXPECT_EQ(huge[0].size(), 5u);
  auto max_k = idx.search_batch(qs, std::numeric_limits<std::size_t>::max());
  EXPECT_TRUE(max_k == huge);
  EXPECT_PANNS_ERROR(idx.search_batch(qs, 0), PANNS_INVALID_ARGUMENT, "k must be");
  EXPECT_PANNS_ERROR(idx.search_batch(std::vector<float>(kDim + 1, 1.0f), 3), PANNS_DIMENSION_MISMATCH, "multiple");
  std::fill(qs.begin() + 3 * kDim, qs.begin() + 4 * kDim, 0.0f);
  EXPECT_PANNS_ERROR(idx.search_batch(qs, 3), PANNS_ZERO_VECTOR, "query row 3");
}

TEST(Panns, MovesTransferOwnership) {
  auto rows = RandomRows(50, kDim, 5);
  panns::Builder b1(kDim, panns::Metric::Dot);
  b1.add_batch(rows, kDim);
  panns::Builder b2(std::move(b1));
  EXPECT_FALSE(static_cast<bool>(b1));
  EXPECT_EQ(b1.size(), 0u);
  EXPECT_PANNS_ERROR(b1.add(rows.data(), kDim), PANNS_NULL_POINTER, "builder");
  EXPECT_EQ(b2.size(), 50u);
  panns::Builder b3(kDim, panns::Metric::Dot);
  b3 = std::move(b2);  // frees b3's own handle
  EXPECT_EQ(b3.size(), 50u);
  panns::Builder& alias = b3;
  b3 = std::move(alias);  // self-move leaves it intact
  EXPECT_EQ(b3.size(), 50u);

  panns::Index i1 = b3.build();
  std::vector<panns::Index> indexes;
  indexes.push_back(std::move(i1));
  indexes.push_back(BuildIndex(rows, panns::Metric::Euclidean, 2));
  EXPECT_FALSE(static_cast<bool>(i1));
  EXPECT_EQ(i1.size(), 0u);
  EXPECT_PANNS_ERROR(i1.search(rows.data(), kDim, 3), PANNS_NULL_POINTER, "index");
  EXPECT_PANNS_ERROR(i1.vector(0), PANNS_NULL_POINTER, "index");
  EXPECT_PANNS_ERROR(i1.search_batch(rows, 3), PANNS_NULL_POINTER, "moved from");
  EXPECT_TRUE(indexes[0].metric() == panns::Metric::Dot);
  EXPECT_TRUE(indexes[1].metric() == panns::Metric::Euclidean);
  panns::Index i2 = std::move(indexes[1]);
  i2 = std::move(indexes[0]);  // frees the Euclidean index
  EXPECT_TRUE(i2.metric() == panns::Metric::Dot);
  EXPECT_EQ(i2.size(), 50u);
}

TEST(Panns, SaveOpenAndHostileFiles) {
  TempDir dir;
  auto rows = RandomRows(300, kDim, 6);
  panns::Index built = BuildIndex(rows, panns::Metric::Euclidean, 4);
  built.save(dir / "a.panns");
  for (bool verify : {false, true}) {
    panns::Index m = panns::Index::open(dir / "a.panns", verify);
    EXPECT_EQ(m.size(), 300u);
    EXPECT_EQ(m.n_trees(), 4u);
    for (std::uint32_t i = 0; i < 20; i++) {
      EXPECT_TRUE(m.search(built.vector(i), 5, 60) == built.search(built.vector(i), 5, 60));
    }
    EXPECT_TRUE(m.vector(299) == std::vector<float>(rows.end() - kDim, rows.end()));
    m.save(dir / "b.panns");
  }
  EXPECT_TRUE(ReadBytes(dir / "a.panns") == ReadBytes(dir / "b.panns"));

  EXPECT_PANNS_ERROR(panns::Index::open(dir / "missing.panns"), PANNS_IO, "missing.panns");
  EXPECT_PANNS_ERROR(built.save(dir / "no/such/dir/x.panns"), PANNS_IO, "x.panns");
  std::vector<char> garbage(4096, 'x');
  WriteBytes(dir / "garbage.panns", garbage.data(), garbage.size());
  EXPECT_PANNS_ERROR(panns::Index::open(dir / "garbage.panns"), PANNS_CORRUPT, "not a panns index");
  auto bytes = ReadBytes(dir / "a.panns");
  WriteBytes(dir / "truncated.panns", bytes.data(), bytes.size() / 3);
  EXPECT_PANNS_ERROR(panns::Index::open(dir / "truncated.panns"), PANNS_CORRUPT, "truncated.panns");
  bytes[bytes.size() - 3] ^= 0x10;
  WriteBytes(dir / "damaged.panns", bytes.data(), bytes.size());
  EXPECT_PANNS_ERROR(panns::Index::open(dir / "damaged.panns", true), PANNS_CORRUPT, "checksum");
}

TEST(Panns, NeighbourGraph) {
  // 2000 points near 20 centres; queries are stored points plus small noise.
  constexpr std::size_t kN = 2000, kQ = 100;
  std::mt19937 rng(31);
  std::normal_distribution<float> gauss;
  std::uniform_int_distribution<std::size_t> pick_centre(0, 19), pick_row(0, kN - 1);
  std::vector<float> centres(20 * kDim);
  for (float& x : centres) x = 4 * gauss(rng);
  std::vector<float> rows(kN * kDim);
  for (std::size_t i = 0; i < kN; i++) {
    const std::size_t c = pick_centre(rng);
    for (std::size_t j = 0; j < kDim; j++) rows[i * kDim + j] = centres[c * kDim + j] + gauss(rng);
  }
  std::vector<std::vector<float>> queries(kQ, std::vector<float>(kDim));
  for (auto& q : queries) {
    const std::size_t r = pick_row(rng);
    for (std::size_t j = 0; j < kDim; j++) q[j] = rows[r * kDim + j] + 0.05f * gauss(rng);
  }

  panns::Index trees = BuildIndex(rows, panns::Metric::Euclidean, 16);
  panns::Index graph = BuildIndex(rows, panns::Metric::Euclidean, 16);
  EXPECT_EQ(graph.graph_degree(), 0u);
  graph.build_graph(16);
  EXPECT_EQ(graph.graph_degree(), 16u);
  EXPECT_EQ(graph.n_trees(), 16u);

  auto recall = [&](const panns::Index& ix, std::size_t budget) {
    std::size_t hits = 0;
    for (const auto& q : queries) {
      auto exact = trees.linear_search(q, 10);
      for (const auto& a : ix.search(q, 10, budget)) {
        hits += std::any_of(exact.begin(), exact.end(),
                            [&](const panns::Neighbor& e) { return e.id == a.id; });
      }
    }
    return static_cast<double>(hits) / (10.0 * kQ);
  };
  EXPECT_FALSE(trees.search_with_stats(queries[0], 10, 40).stats.exact_scan);
  EXPECT_FALSE(graph.search_with_stats(queries[0], 10, 40).stats.exact_scan);
  const double r_trees = recall(trees, 40), r_graph = recall(graph, 40);
  std::cout << "recall@10 at budget 40: trees " << r_trees << ", graph " << r_graph << "\n";
  EXPECT_GE(r_graph, r_trees);
  EXPECT_GE(r_graph, 0.9);

  // Scored on exact distances during the build: another graph, as good.
  panns::Index exact = BuildIndex(rows, panns::Metric::Euclidean, 16);
  exact.build_graph(16, 0, true);
  EXPECT_EQ(exact.graph_degree(), 16u);
  EXPECT_NE(exact.to_bytes(), graph.to_bytes());
  EXPECT_GE(recall(exact, 40), 0.9);

  trees.build_graph();  // the default degree; replaces nothing yet
  EXPECT_EQ(trees.graph_degree(), 24u);
  trees.build_graph(8, 1);
  EXPECT_EQ(trees.graph_degree(), 8u);
  EXPECT_PANNS_ERROR(trees.build_graph(100000), PANNS_INVALID_ARGUMENT, "");

  TempDir dir;
  graph.save(dir / "graph.panns");
  panns::Index opened = panns::Index::open(dir / "graph.panns");
  EXPECT_EQ(opened.graph_degree(), 16u);
  for (std::size_t i = 0; i < 20; i++) {
    EXPECT_TRUE(opened.search(queries[i], 10, 40) == graph.search(queries[i], 10, 40));
  }
  // An opened (memory-mapped) index takes a new graph too; it lives beside the mapping.
  opened.build_graph(8);
  EXPECT_EQ(opened.graph_degree(), 8u);
  EXPECT_EQ(opened.search(queries[0], 10, 40).size(), 10u);

  panns::Index moved = std::move(graph);
  EXPECT_EQ(graph.graph_degree(), 0u);  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_PANNS_ERROR(graph.build_graph(), PANNS_NULL_POINTER, "");
  EXPECT_EQ(moved.graph_degree(), 16u);
}

TEST(Panns, AddFile) {
  TempDir dir;
  auto rows = RandomRows(20, kDim, 7);
  std::vector<char> fvecs;
  for (std::size_t i = 0; i < 20; i++) {
    std::int32_t d = kDim;
    const char* p = reinterpret_cast<const char*>(&d);
    fvecs.insert(fvecs.end(), p, p + 4);
    const char* r = reinterpret_cast<const char*>(rows.data() + i * kDim);
    fvecs.insert(fvecs.end(), r, r + kDim * sizeof(float));
  }
  WriteBytes(dir / "d.fvecs", fvecs.data(), fvecs.size());
  panns::Builder b(kDim, panns::Metric::Euclidean);
  EXPECT_EQ(b.add_file(dir / "d.fvecs"), 20u);
  EXPECT_EQ(b.size(), 20u);
  EXPECT_PANNS_ERROR(b.add_file(dir / "none.fvecs"), PANNS_IO, "none.fvecs");
  panns::Builder wrong(kDim + 1, panns::Metric::Euclidean);
  EXPECT_PANNS_ERROR(wrong.add_file(dir / "d.fvecs"), PANNS_DIMENSION_MISMATCH, "d.fvecs");
  panns::Index idx = b.build();
  EXPECT_TRUE(idx.vector(3) == std::vector<float>(rows.begin() + 3 * kDim, rows.begin() + 4 * kDim));
}

TEST(Panns, ConcurrentSearches) {
  const std::size_t n = 2000, nq = 50, k = 10;
  auto rows = RandomRows(n, kDim, 8);
  const panns::Index idx = BuildIndex(rows, panns::Metric::Euclidean, 16);
  auto qs = RandomRows(nq, kDim, 9);
  std::vector<std::vector<panns::Neighbor>> expected;
  const std::size_t budget = 200;  // the approximate path (2000 items: exact scan from 1000)
  for (std::size_t q = 0; q < nq; q++) {
    auto r = idx.search_with_stats(qs.data() + q * kDim, kDim, k, budget);
    EXPECT_FALSE(r.stats.exact_scan);
    expected.push_back(r.neighbors);
  }
  std::atomic<int> mismatches{0};
  std::atomic<int> wrong_errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; t++) {
    threads.emplace_back([&] {
      for (int rep = 0; rep < 5; rep++) {
        for (std::size_t q = 0; q < nq; q++) {
          if (idx.search(qs.data() + q * kDim, kDim, k, budget) != expected[q]) mismatches++;
        }
        // Errors are per thread: this one must carry its own message.
        auto err = ErrorOf([&] { idx.search(qs.data(), kDim, 0); });
        if (err.first != PANNS_INVALID_ARGUMENT || !Contains(err.second, "k must be")) wrong_errors++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(wrong_errors.load(), 0);
  auto batch = idx.search_batch(qs, k, budget);
  EXPECT_TRUE(batch == expected);
}

TEST(Panns, CrossLanguageFixture) {
  const char* dir_env = std::getenv("PANNS_FIXTURE_DIR");
  if (dir_env == nullptr || *dir_env == '\0') {
    std::cout << "PANNS_FIXTURE_DIR is not set: fixture comparison skipped\n";
    GTEST_SKIP();
  }
  const std::string dir = dir_env;
  std::ifstream meta(dir + "/meta.txt");
  ASSERT_TRUE(meta.good());
  std::size_t dim = 0, nq = 0, k = 0, budget = 0;
  std::string metric, line;
  while (std::getline(meta, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "dim") dim = std::stoul(value);
    if (key == "n_queries") nq = std::stoul(value);
    if (key == "k") k = std::stoul(value);
    if (key == "budget") budget = std::stoul(value);
    if (key == "metric") metric = value;
  }
  EXPECT_EQ(metric, "angular");
  auto qbytes = ReadBytes(dir + "/queries.f32");
  auto ibytes = ReadBytes(dir + "/expected_ids.u32");
  auto dbytes = ReadBytes(dir + "/expected_dist.f32");
  ASSERT_EQ(qbytes.size(), nq * dim * 4);
  ASSERT_EQ(ibytes.size(), nq * k * 4);
  ASSERT_EQ(dbytes.size(), nq * k * 4);
  std::vector<float> queries(nq * dim), want_d(nq * k);
  std::vector<std::uint32_t> want_ids(nq * k);
  std::memcpy(queries.data(), qbytes.data(), qbytes.size());
  std::memcpy(want_ids.data(), ibytes.data(), ibytes.size());
  std::memcpy(want_d.data(), dbytes.data(), dbytes.size());

  panns::Index idx = panns::Index::open(dir + "/index.panns", true);
  EXPECT_EQ(idx.dim(), dim);
  EXPECT_TRUE(idx.metric() == panns::Metric::Angular);
  auto batch = idx.search_batch(queries, k, budget);
  for (std::size_t q = 0; q < nq; q++) {
    auto hits = idx.search(queries.data() + q * dim, dim, k, budget);
    EXPECT_TRUE(hits == batch[q]);
    for (std::size_t i = 0; i < k; i++) {
      std::uint32_t id = i < hits.size() ? hits[i].id : UINT32_MAX;
      EXPECT_EQ(id, want_ids[q * k + i]);
      if (i < hits.size()) {
        EXPECT_NEAR(hits[i].distance, want_d[q * k + i], 1e-6f);
      }
    }
  }
}
