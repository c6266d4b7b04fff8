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
