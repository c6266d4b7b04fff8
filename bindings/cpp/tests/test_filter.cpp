// Tests of filtered search, filtered batch search and range search in the C++ wrapper,
// against an exact scan over the allowed items computed here, and of prepared AllowLists.
#include <panns.hpp>

#ifdef PANNS_MINI_GTEST
#include "mini_gtest.hpp"
#else
#include <gtest/gtest.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr std::size_t kDim = 8;
constexpr std::size_t kN = 3000;

std::vector<float> Gaussian(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss;
  std::vector<float> v(n * kDim);
  for (float& x : v) x = gauss(rng);
  return v;
}

struct Fixture {
  std::vector<float> rows = Gaussian(kN, 17);
  panns::Index index = Build(rows);
  static panns::Index Build(const std::vector<float>& rows) {
    panns::Builder b(kDim, panns::Metric::Euclidean);
    b.add_batch(rows, kDim);
    panns::BuildOptions o = panns::default_build_options();
    o.n_trees = 8;
    panns::Index ix = b.build(o);
    ix.build_graph(16);
    return ix;
  }
  std::vector<float> Row(std::size_t i) const {
    return std::vector<float>(rows.begin() + static_cast<std::ptrdiff_t>(i * kDim),
                              rows.begin() + static_cast<std::ptrdiff_t>((i + 1) * kDim));
  }
  /// Ids of the k nearest items of q among those `allowed` accepts, by a scan.
  template <class Allowed>
  std::vector<std::uint32_t> Exact(const std::vector<float>& q, std::size_t k, Allowed allowed) const {
    std::vector<std::pair<double, std::uint32_t>> all;
    for (std::size_t i = 0; i < kN; i++) {
      if (!allowed(i)) continue;
      double s = 0;
      for (std::size_t j = 0; j < kDim; j++) {
        double d = static_cast<double>(q[j]) - rows[i * kDim + j];
        s += d * d;
      }
      all.emplace_back(std::sqrt(s), static_cast<std::uint32_t>(i));
    }
    std::sort(all.begin(), all.end());
    std::vector<std::uint32_t> out;
    for (std::size_t i = 0; i < k && i < all.size(); i++) out.push_back(all[i].second);
    return out;
  }
};

Fixture& Shared() {
  static Fixture f;
  return f;
}

std::vector<std::uint32_t> Ids(const std::vector<panns::Neighbor>& hits) {
  std::vector<std::uint32_t> out;
  for (const auto& h : hits) out.push_back(h.id);
  return out;
}

template <class F>
int StatusOf(F&& f) {
  try {
    f();
  } catch (const panns::Error& e) {
    return static_cast<int>(e.status());
  }
  return -1;
}

}  // namespace

TEST(Filter, EveryOverloadAgreesAndMatchesExactSearchOnTheApproximatePath) {
  Fixture& fx = Shared();
  std::vector<bool> mask(kN), deny(kN);
  std::vector<std::uint32_t> ids, others;
  for (std::size_t i = 0; i < kN; i++) {
    mask[i] = i % 2 == 1;  // 50%: 1500 items
    deny[i] = !mask[i];
    (mask[i] ? ids : others).push_back(static_cast<std::uint32_t>(i));
  }
  std::atomic<int> calls{0};
  // 2 * 40 < 1500 and 1500^2 > 16 * 40 * 3000: the approximate path (the walk).
  const std::size_t k = 10, budget = 40;
  std::size_t found = 0, total = 0;
  std::vector<float> qs = Gaussian(30, 3);
  for (std::size_t qi = 0; qi < 30; qi++) {
    std::vector<float> q(qs.begin() + static_cast<std::ptrdiff_t>(qi * kDim),
                         qs.begin() + static_cast<std::ptrdiff_t>((qi + 1) * kDim));
    panns::SearchResult r = fx.index.search_filtered_with_stats(q, k, budget, panns::Filter::allow_mask(mask));
    EXPECT_FALSE(r.stats.exact_scan);
    ASSERT_EQ(r.neighbors.size(), k);
    for (const auto& h : r.neighbors) EXPECT_TRUE(mask[h.id]);
    std::vector<std::uint32_t> truth = fx.Exact(q, k, [&](std::size_t i) { return mask[i]; });
    for (const auto& h : r.neighbors) found += std::count(truth.begin(), truth.end(), h.id);
    total += k;
    std::vector<std::uint32_t> got = Ids(r.neighbors);
    EXPECT_EQ(Ids(fx.index.search_filtered(q, k, budget, mask)), got);
    EXPECT_EQ(Ids(fx.index.search_filtered(q, k, budget, ids)), got);
    EXPECT_EQ(Ids(fx.index.search_filtered(q, k, budget,
                                           [&](std::uint64_t id) {
                                             calls++;
                                             return static_cast<bool>(mask[id]);
                                           })),
              got);
    EXPECT_EQ(Ids(fx.index.search_filtered(q, k, budget, panns::Filter::deny_mask(deny))), got);
    EXPECT_EQ(Ids(fx.index.search_filtered(q, k, budget, panns::Filter::deny_ids(others))), got);
  }
  EXPECT_GE(static_cast<double>(found) / static_cast<double>(total), 0.95);
  EXPECT_TRUE(calls.load() > 0);
}

TEST(Filter, SelectiveFiltersAreExactEmptyOnesEmptyBadOnesThrow) {
  Fixture& fx = Shared();
  std::vector<float> q = Gaussian(1, 9);
  std::vector<std::uint32_t> few = {3, 99, 1500, 2999, 7, 8, 9, 1234};
  panns::SearchResult r = fx.index.search_filtered_with_stats(q, 5, 0, panns::Filter::allow_ids(few));
  EXPECT_TRUE(r.stats.exact_scan);
  EXPECT_EQ(r.stats.scored, few.size());
  EXPECT_EQ(Ids(r.neighbors), fx.Exact(q, 5, [&](std::size_t i) {
              return std::find(few.begin(), few.end(), i) != few.end();
            }));
  EXPECT_TRUE(fx.index.search_filtered(q, 5, 0, std::vector<std::uint32_t>{}).empty());
  EXPECT_TRUE(fx.index.search_filtered(q, 5, 0, std::vector<bool>(kN, false)).empty());
  EXPECT_TRUE(fx.index.search_filtered(q, 5, 50, [](std::uint64_t) { return false; }).empty());
  EXPECT_EQ(Ids(fx.index.search_filtered(q, 5, 50, panns::Filter())), Ids(fx.index.search(q, 5, 50)));
  EXPECT_EQ(StatusOf([&] { fx.index.search_filtered(q, 5, 0, std::vector<bool>(kN + 1)); }),
            static_cast<int>(PANNS_INVALID_ARGUMENT));
  EXPECT_EQ(StatusOf([&] { panns::Filter::allow_bitmap(std::vector<std::uint64_t>(2), kN); }),
            static_cast<int>(PANNS_INVALID_ARGUMENT));
  EXPECT_EQ(StatusOf([&] { fx.index.search_filtered(q, 5, 0, std::vector<std::uint32_t>{1, 3000}); }),
            static_cast<int>(PANNS_OUT_OF_RANGE));
}

TEST(Filter, APredicatesExceptionStopsTheSearchAndIsRethrown) {
  Fixture& fx = Shared();
  std::vector<float> q = Gaussian(1, 10);
  int calls = 0;
  bool caught = false;
  try {
    fx.index.search_filtered(q, 5, 50, [&](std::uint64_t) -> bool {
      if (++calls == 4) throw std::runtime_error("no more");
      return true;
    });
  } catch (const std::runtime_error& e) {
    caught = std::string(e.what()) == "no more";
  }
  EXPECT_TRUE(caught);
  EXPECT_EQ(calls, 4);
  // From the batch too, and the index still works afterwards.
  std::atomic<int> batch_calls{0};
  caught = false;
  try {
    fx.index.search_batch_filtered(Gaussian(16, 11), 5, 50, panns::Filter::allow_if([&](std::uint64_t) -> bool {
                                     if (++batch_calls == 20) throw std::logic_error("stop");
                                     return true;
                                   }));
  } catch (const std::logic_error&) {
    caught = true;
  }
  EXPECT_TRUE(caught);
  EXPECT_EQ(fx.index.search_filtered(q, 5, 50, [](std::uint64_t) { return true; }).size(), 5u);
}

TEST(Filter, BatchEqualsSingleSearches) {
  Fixture& fx = Shared();
  std::vector<float> qs = Gaussian(12, 12);
  panns::Filter odd = panns::Filter::allow_if([](std::uint64_t id) { return id % 2 == 1; });
  auto batch = fx.index.search_batch_filtered(qs, 10, 80, odd);
  ASSERT_EQ(batch.size(), 12u);
  for (std::size_t i = 0; i < 12; i++) {
    std::vector<float> q(qs.begin() + static_cast<std::ptrdiff_t>(i * kDim),
                         qs.begin() + static_cast<std::ptrdiff_t>((i + 1) * kDim));
    EXPECT_EQ(Ids(batch[i]), Ids(fx.index.search_filtered(q, 10, 80, odd)));
    EXPECT_EQ(batch[i].size(), 10u);
  }
  auto short_rows = fx.index.search_batch_filtered(qs, 10, 0, panns::Filter::allow_ids({5, 6}));
  for (const auto& row : short_rows) EXPECT_EQ(row.size(), 2u);
}

TEST(Filter, RangeSearchFindsTheItemsWithinTheRadius) {
  Fixture& fx = Shared();
  std::vector<float> q = Gaussian(1, 13);
  std::vector<std::uint32_t> order = fx.Exact(q, 41, [](std::size_t) { return true; });
  auto dist = [&](std::uint32_t id) {
    std::vector<float> r = fx.Row(id);
    double s = 0;
    for (std::size_t j = 0; j < kDim; j++) s += (q[j] - r[j]) * (q[j] - r[j]);
    return std::sqrt(s);
  };
  float radius = static_cast<float>((dist(order[39]) + dist(order[40])) / 2);  // 40 inside
  panns::RangeResult all = fx.index.range_search(q, radius, 100, kN);
  EXPECT_FALSE(all.truncated);
  EXPECT_EQ(Ids(all.neighbors), std::vector<std::uint32_t>(order.begin(), order.begin() + 40));
  panns::RangeResult capped = fx.index.range_search(q, radius, 10, kN);
  EXPECT_TRUE(capped.truncated);
  EXPECT_EQ(Ids(capped.neighbors), std::vector<std::uint32_t>(order.begin(), order.begin() + 10));
  panns::RangeResult approx = fx.index.range_search(q, radius, 100);
  EXPECT_GE(approx.neighbors.size(), 36u);
  for (const auto& h : approx.neighbors) EXPECT_LE(h.distance, radius);
  panns::RangeResult even = fx.index.range_search(q, radius, 100, kN, panns::Filter::allow_if([](std::uint64_t id) {
                                                    return id % 2 == 0;
                                                  }));
  std::vector<std::uint32_t> want;
  for (std::size_t i = 0; i < 40; i++)
    if (order[i] % 2 == 0) want.push_back(order[i]);
  EXPECT_EQ(Ids(even.neighbors), want);
  EXPECT_EQ(StatusOf([&] { fx.index.range_search(q, -1.0f, 10); }), static_cast<int>(PANNS_INVALID_ARGUMENT));
  EXPECT_EQ(StatusOf([&] { fx.index.range_search(q, std::nanf(""), 10); }), static_cast<int>(PANNS_INVALID_ARGUMENT));
}

// A prepared AllowList gives the results and statistics of the filter it came from, in
// search_filtered_with_stats, search_batch_filtered and range_search, on the exact scan (30
// items at the default budget) and on the walk (50% at beam 40).
TEST(Filter, APreparedAllowListGivesTheResultsOfItsFilter) {
  Fixture& fx = Shared();
  const std::pair<std::size_t, std::size_t> plans[] = {{100, 0}, {2, 40}};  // (stride, budget)
  for (const auto& plan : plans) {
    const std::size_t stride = plan.first, budget = plan.second;
    std::vector<bool> mask(kN);
    std::vector<std::uint32_t> others;
    std::size_t allowed = 0;
    for (std::size_t i = 0; i < kN; i++) {
      mask[i] = i % stride == 1;
      if (mask[i]) allowed++;
      else others.push_back(static_cast<std::uint32_t>(i));
    }
    panns::Filter f = panns::Filter::allow_mask(mask);
    std::vector<panns::AllowList> lists = {fx.index.prepare_filter(f),
                                           fx.index.prepare_filter(panns::Filter::deny_ids(others))};
    lists.push_back(fx.index.prepare_filter(lists[0]));  // a copy made from a list
    for (const auto& l : lists) {
      EXPECT_EQ(l.size(), allowed);
      EXPECT_EQ(l.items(), kN);
    }
    std::vector<float> qs = Gaussian(12, 21);
    for (std::size_t qi = 0; qi < 12; qi++) {
      std::vector<float> q(qs.begin() + static_cast<std::ptrdiff_t>(qi * kDim),
                           qs.begin() + static_cast<std::ptrdiff_t>((qi + 1) * kDim));
      panns::SearchResult want = fx.index.search_filtered_with_stats(q, 10, budget, f);
      EXPECT_EQ(want.stats.exact_scan, stride == 100);
      ASSERT_EQ(want.neighbors.size(), 10u);
      float radius = want.neighbors[5].distance;
      panns::RangeResult want_r = fx.index.range_search(q, radius, 8, budget, f);
      for (const auto& l : lists) {
        panns::SearchResult got = fx.index.search_filtered_with_stats(q, 10, budget, l);
        EXPECT_EQ(got.neighbors, want.neighbors);
        EXPECT_EQ(got.stats.scored, want.stats.scored);
        EXPECT_EQ(got.stats.budget, want.stats.budget);
        EXPECT_EQ(got.stats.exact_scan, want.stats.exact_scan);
        panns::RangeResult got_r = fx.index.range_search(q, radius, 8, budget, l);
        EXPECT_EQ(got_r.neighbors, want_r.neighbors);
        EXPECT_EQ(got_r.truncated, want_r.truncated);
      }
    }
    auto want = fx.index.search_batch_filtered(qs, 10, budget, f);
    for (const auto& l : lists) EXPECT_EQ(fx.index.search_batch_filtered(qs, 10, budget, l), want);
  }
  // The mask and id overloads; a predicate cannot be prepared; a list of another item count
  // is refused; an empty AllowList is a NULL list.
  std::vector<float> q = Gaussian(1, 22);
  EXPECT_EQ(fx.index.prepare_filter(std::vector<std::uint32_t>{4, 5, 5}).size(), 2u);
  EXPECT_EQ(fx.index.prepare_filter(std::vector<bool>(kN, true)).size(), kN);
  EXPECT_EQ(StatusOf([&] { fx.index.prepare_filter(panns::Filter::allow_if([](std::uint64_t) { return true; })); }),
            static_cast<int>(PANNS_INVALID_ARGUMENT));
  panns::Builder b(kDim, panns::Metric::Euclidean);
  b.add_batch(Gaussian(100, 23), kDim);
  panns::AllowList foreign = b.build().prepare_filter(panns::Filter());  // outlives its index
  EXPECT_EQ(foreign.items(), 100u);
  std::string message;
  try {
    fx.index.search_filtered(q, 5, 0, foreign);
  } catch (const panns::Error& e) {
    message = e.what();
  }
  EXPECT_TRUE(message.find("made for an index of 100 items; this one has 3000") != std::string::npos);
  EXPECT_EQ(StatusOf([&] { fx.index.search_filtered(q, 5, 0, panns::AllowList()); }),
            static_cast<int>(PANNS_NULL_POINTER));
}
