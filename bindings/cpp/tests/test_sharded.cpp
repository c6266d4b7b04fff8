// Tests of panns::ShardedIndex (bindings/cpp/include/panns.hpp): shards built and saved from
// C++, a manifest written, the merged search against each shard searched on its own and
// merged here, batch against single searches, and refusals of a replaced or missing shard.
#include <panns.hpp>

#ifdef PANNS_MINI_GTEST
#include "mini_gtest.hpp"
#else
#include <gtest/gtest.h>
#endif

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

constexpr std::uint32_t kDim = 10;
constexpr std::size_t kPer = 300;
constexpr std::size_t kShards = 3;

std::vector<float> Rows(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss;
  std::vector<float> v(n * kDim);
  for (float& x : v) x = gauss(rng);
  return v;
}

panns::Index Build(const float* rows, std::size_t n, unsigned seed) {
  panns::Builder b(kDim, panns::Metric::Euclidean);
  b.add_batch(rows, n, kDim);
  panns::BuildOptions o = panns::default_build_options();
  o.n_trees = 8;
  o.seed = seed;
  return b.build(o);
}

}  // namespace

TEST(Sharded, MergeEqualsIndependentMergeAndRefusals) {
  const fs::path dir = fs::temp_directory_path() / ("panns-cpp-shards-" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  const std::vector<float> data = Rows(kPer * kShards, 3);
  std::vector<std::string> paths;
  std::vector<panns::Index> parts;
  for (std::size_t s = 0; s < kShards; s++) {
    parts.push_back(Build(data.data() + s * kPer * kDim, kPer, 42));
    paths.push_back((dir / ("s" + std::to_string(s) + ".panns")).string());
    parts.back().save(paths.back());
  }
  const std::string manifest = (dir / "m.shards").string();
  panns::ShardedIndex::write_manifest(manifest, paths);
  panns::ShardedIndex sx = panns::ShardedIndex::open(manifest, true);
  EXPECT_EQ(sx.size(), kPer * kShards);
  EXPECT_EQ(sx.dim(), kDim);
  EXPECT_EQ(sx.n_shards(), kShards);
  EXPECT_TRUE(sx.metric() == panns::Metric::Euclidean);

  const std::vector<float> queries = Rows(15, 9);
  const std::size_t k = 7, budget = 25;  // 25 << kPer / 2: every shard walks its trees
  auto batch = sx.search_batch(queries.data(), 15, kDim, k, budget);
  ASSERT_EQ(batch.size(), std::size_t{15});
  for (std::size_t r = 0; r < 15; r++) {
    const float* q = queries.data() + r * kDim;
    std::vector<panns::LabeledNeighbor> want;
    for (std::size_t s = 0; s < kShards; s++) {
      for (const panns::Neighbor& n : parts[s].search(q, kDim, k, budget)) {
        want.push_back({s * kPer + n.id, n.distance});
      }
    }
    std::sort(want.begin(), want.end(), [](const panns::LabeledNeighbor& a, const panns::LabeledNeighbor& b) {
      return a.distance != b.distance ? a.distance < b.distance : a.label < b.label;
    });
    want.resize(k);
    const auto got = sx.search(q, kDim, k, budget);
    EXPECT_TRUE(got == want);
    EXPECT_TRUE(batch[r] == got);
  }
  try {
    sx.search(queries.data(), kDim - 1, k);
    EXPECT_TRUE(false);
  } catch (const panns::Error& e) {
    EXPECT_EQ(e.status(), PANNS_DIMENSION_MISMATCH);
  }

  // A replaced shard and a missing one are refused, naming the file.
  Build(data.data(), kPer, 7).save(paths[1]);
  try {
    panns::ShardedIndex::open(manifest);
    EXPECT_TRUE(false);
  } catch (const panns::Error& e) {
    EXPECT_EQ(e.status(), PANNS_CORRUPT);
    EXPECT_TRUE(std::string(e.what()).find("s1.panns") != std::string::npos);
  }
  fs::remove(paths[1]);
  try {
    panns::ShardedIndex::open(manifest);
    EXPECT_TRUE(false);
  } catch (const panns::Error& e) {
    EXPECT_EQ(e.status(), PANNS_IO);
    EXPECT_TRUE(std::string(e.what()).find("shard 1") != std::string::npos);
  }
  fs::remove_all(dir);
}

// Filtered sharded search against an exact filtered scan of the rows (row labels): a short
// allow-list at a small budget (planned per shard: exact), a deny-list and allow_if at a
// budget of half a shard (exact), allow_if at a small budget (only allowed labels), an empty
// list, and an exception thrown by the predicate (rethrown, never across the C callback).
TEST(Sharded, FilteredByLabels) {
  const fs::path dir = fs::temp_directory_path() / ("panns-cpp-fshards-" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  const std::vector<float> data = Rows(kPer * kShards, 5);
  std::vector<std::string> paths;
  for (std::size_t s = 0; s < kShards; s++) {
    paths.push_back((dir / ("f" + std::to_string(s) + ".panns")).string());
    Build(data.data() + s * kPer * kDim, kPer, 42).save(paths.back());
  }
  const std::string manifest = (dir / "f.shards").string();
  panns::ShardedIndex::write_manifest(manifest, paths);
  panns::ShardedIndex sx = panns::ShardedIndex::open(manifest);
  auto exact = [&](const std::vector<float>& q, std::size_t k, auto keep) {
    std::vector<std::pair<float, std::uint64_t>> all;
    for (std::size_t r = 0; r < kPer * kShards; r++) {
      if (!keep(r)) continue;
      float d = 0;
      for (std::size_t i = 0; i < kDim; i++) d += (data[r * kDim + i] - q[i]) * (data[r * kDim + i] - q[i]);
      all.emplace_back(d, r);
    }
    std::sort(all.begin(), all.end());
    std::vector<std::uint64_t> out;
    for (std::size_t i = 0; i < k && i < all.size(); i++) out.push_back(all[i].second);
    return out;
  };
  auto labels_of = [](const std::vector<panns::LabeledNeighbor>& h) {
    std::vector<std::uint64_t> out;
    for (const auto& x : h) out.push_back(x.label);
    return out;
  };
  const std::vector<std::uint64_t> listed = {1, 50, 299, 600, 700, 899, std::uint64_t(1) << 40};
  auto in_list = [&](std::uint64_t l) { return std::find(listed.begin(), listed.end(), l) != listed.end(); };
  auto odd = [](std::uint64_t l) { return l % 2 == 1; };
  const std::vector<float> queries = Rows(8, 17);
  for (std::size_t i = 0; i < 8; i++) {
    const std::vector<float> q(queries.begin() + i * kDim, queries.begin() + (i + 1) * kDim);
    EXPECT_EQ(labels_of(sx.search_filtered(q, 3, 3, panns::LabelFilter::allow_labels(listed))), exact(q, 3, in_list));
    EXPECT_EQ(labels_of(sx.search_filtered(q, 8, kPer / 2, panns::LabelFilter::deny_labels(listed))),
              exact(q, 8, [&](std::uint64_t l) { return !in_list(l); }));
    EXPECT_EQ(labels_of(sx.search_filtered(q, 8, kPer / 2, panns::LabelFilter::allow_if(odd))), exact(q, 8, odd));
    auto some = sx.search_filtered(q, 8, 20, panns::LabelFilter::allow_if(odd));
    EXPECT_EQ(some.size(), 8u);
    for (const auto& h : some) EXPECT_TRUE(odd(h.label));
  }
  const std::vector<float> q0(data.begin(), data.begin() + kDim);
  EXPECT_TRUE(sx.search_filtered(q0, 5, 10, panns::LabelFilter::allow_labels({})).empty());
  bool threw = false;
  try {
    sx.search_filtered(q0, 5, 10, panns::LabelFilter::allow_if([](std::uint64_t) -> bool { throw std::runtime_error("boom"); }));
  } catch (const std::runtime_error& e) {
    threw = std::string(e.what()) == "boom";
  }
  EXPECT_TRUE(threw);
  fs::remove_all(dir);
}

// Range search over the shards against the exact ball (every shard scans exactly at a budget
// of half a shard), unfiltered and filtered, with the cap and its flag; the filtered batch
// against one filtered search per row; bad arguments and a throwing predicate.
TEST(Sharded, RangeSearchAndFilteredBatch) {
  const fs::path dir = fs::temp_directory_path() / ("panns-cpp-rshards-" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  const std::vector<float> data = Rows(kPer * kShards, 8);
  std::vector<std::string> paths;
  for (std::size_t s = 0; s < kShards; s++) {
    paths.push_back((dir / ("r" + std::to_string(s) + ".panns")).string());
    Build(data.data() + s * kPer * kDim, kPer, 7).save(paths.back());
  }
  const std::string manifest = (dir / "r.shards").string();
  panns::ShardedIndex::write_manifest(manifest, paths);
  panns::ShardedIndex sx = panns::ShardedIndex::open(manifest);
  // Rows `keep` accepts, nearest first, and a radius halfway between the n-th and n+1-th.
  auto ball = [&](const std::vector<float>& q, std::size_t n, auto keep) {
    std::vector<std::pair<double, std::uint64_t>> all;
    for (std::size_t r = 0; r < kPer * kShards; r++) {
      if (!keep(r)) continue;
      double d = 0;
      for (std::size_t i = 0; i < kDim; i++) d += double(data[r * kDim + i] - q[i]) * (data[r * kDim + i] - q[i]);
      all.emplace_back(std::sqrt(d), r);
    }
    std::sort(all.begin(), all.end());
    std::vector<std::uint64_t> rows;
    for (std::size_t i = 0; i < n; i++) rows.push_back(all[i].second);
    return std::make_pair(rows, float((all[n - 1].first + all[n].first) / 2));
  };
  auto labels_of = [](const std::vector<panns::LabeledNeighbor>& h) {
    std::vector<std::uint64_t> out;
    for (const auto& x : h) out.push_back(x.label);
    return out;
  };
  auto odd = [](std::uint64_t l) { return l % 2 == 1; };
  std::vector<std::uint64_t> odd_rows;
  for (std::uint64_t r = 1; r < kPer * kShards; r += 2) odd_rows.push_back(r);
  const std::vector<float> queries = Rows(6, 19);
  for (std::size_t i = 0; i < 6; i++) {
    const std::vector<float> q(queries.begin() + i * kDim, queries.begin() + (i + 1) * kDim);
    auto [want, radius] = ball(q, 20, [](std::uint64_t) { return true; });
    panns::LabeledRangeResult r = sx.range_search(q, radius, 1000, kPer / 2);
    EXPECT_EQ(labels_of(r.neighbors), want);
    EXPECT_FALSE(r.truncated);
    for (const auto& h : r.neighbors) EXPECT_TRUE(h.distance <= radius);
    r = sx.range_search(q, radius, 8, kPer / 2);
    EXPECT_EQ(labels_of(r.neighbors), std::vector<std::uint64_t>(want.begin(), want.begin() + 8));
    EXPECT_TRUE(r.truncated);
    auto [want_odd, radius_odd] = ball(q, 12, odd);
    for (const panns::LabelFilter& f :
         {panns::LabelFilter::allow_labels(odd_rows), panns::LabelFilter::allow_if(odd)}) {
      r = sx.range_search(q, radius_odd, 1000, kPer / 2, f);
      EXPECT_EQ(labels_of(r.neighbors), want_odd);
      EXPECT_FALSE(r.truncated);
    }
  }
  // The filtered batch: row i equals search_filtered of query i.
  const std::vector<std::uint64_t> listed = {3, 77, 150, 299, 300, 512, 800, 899, std::uint64_t(1) << 40};
  for (const panns::LabelFilter& f :
       {panns::LabelFilter::allow_labels(listed), panns::LabelFilter::deny_labels(listed),
        panns::LabelFilter::allow_if(odd), panns::LabelFilter::allow_labels({})}) {
    auto rows = sx.search_batch_filtered(queries, 5, 30, f);
    ASSERT_EQ(rows.size(), 6u);
    for (std::size_t i = 0; i < 6; i++) {
      const std::vector<float> q(queries.begin() + i * kDim, queries.begin() + (i + 1) * kDim);
      EXPECT_EQ(rows[i], sx.search_filtered(q, 5, 30, f));
    }
  }
  EXPECT_TRUE(sx.search_batch_filtered({}, 5, 30, panns::LabelFilter::allow_labels(listed)).empty());
  // Bad arguments.
  const std::vector<float> q0(data.begin(), data.begin() + kDim);
  auto status_of = [](auto&& f) {
    try {
      f();
    } catch (const panns::Error& e) {
      return e.status();
    }
    return PANNS_OK;
  };
  EXPECT_EQ(status_of([&] { sx.range_search(q0, -1.0f, 10); }), PANNS_INVALID_ARGUMENT);
  EXPECT_EQ(status_of([&] { sx.range_search(q0, std::nanf(""), 10); }), PANNS_INVALID_ARGUMENT);
  EXPECT_EQ(status_of([&] { sx.range_search(q0, 1.0f, 0); }), PANNS_INVALID_ARGUMENT);
  EXPECT_EQ(status_of([&] { sx.range_search(std::vector<float>(3, 1.0f), 1.0f, 10); }), PANNS_DIMENSION_MISMATCH);
  EXPECT_EQ(status_of([&] { sx.search_batch_filtered(std::vector<float>(kDim + 1), 5, 0, panns::LabelFilter()); }),
            PANNS_DIMENSION_MISMATCH);
  EXPECT_TRUE(sx.range_search(q0, 100.0f, 10, 0, panns::LabelFilter::allow_labels({})).neighbors.empty());
  EXPECT_TRUE(sx.range_search(q0, 100.0f, 10, 0, panns::LabelFilter::allow_labels({std::uint64_t(1) << 50}))
                  .neighbors.empty());
  for (int batch = 0; batch < 2; batch++) {
    bool threw = false;
    auto boom = panns::LabelFilter::allow_if([](std::uint64_t) -> bool { throw std::runtime_error("boom"); });
    try {
      if (batch) {
        sx.search_batch_filtered(queries, 5, 30, boom);
      } else {
        sx.range_search(q0, 100.0f, 10, 30, boom);
      }
    } catch (const std::runtime_error& e) {
      threw = std::string(e.what()) == "boom";
    }
    EXPECT_TRUE(threw);
  }
  fs::remove_all(dir);
}
