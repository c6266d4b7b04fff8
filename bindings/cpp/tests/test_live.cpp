// Tests of panns::LiveIndex (bindings/cpp/include/panns.hpp over panns_live_*): add / search /
// remove / commit / reader refresh / compact against an exact scan kept here, the writer lock,
// read-only readers, bad input applying nothing, moves, concurrent searches, filtered search by label.
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
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace fs = std::filesystem;

namespace {

constexpr std::uint32_t kDim = 10;

std::vector<float> RandomRows(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss;
  std::vector<float> v(n * kDim);
  for (float& x : v) x = gauss(rng);
  return v;
}

template <class F>
std::pair<int, std::string> ErrorOf(F&& f) {
  try {
    f();
  } catch (const panns::Error& e) {
    return {static_cast<int>(e.status()), e.what()};
  }
  return {-1, ""};
}

#define EXPECT_PANNS_ERROR(stmt, want_status, needle)                      \
  do {                                                                     \
    auto err_ = ErrorOf([&] { stmt; });                                    \
    EXPECT_EQ(err_.first, static_cast<int>(want_status));                  \
    EXPECT_TRUE(err_.second.find(needle) != std::string::npos);            \
  } while (0)

struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("panns-cpp-live-" + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

/// What the live index should hold: label -> vector.
using Model = std::map<std::uint64_t, std::vector<float>>;

void AddTo(panns::LiveIndex& live, Model& m, const std::vector<std::uint64_t>& labels,
           const std::vector<float>& rows) {
  live.add(labels, rows);
  for (std::size_t i = 0; i < labels.size(); i++) {
    m[labels[i]] = std::vector<float>(rows.begin() + i * kDim, rows.begin() + (i + 1) * kDim);
  }
}

/// The exact k nearest labels (squared L2, ties by label).
std::vector<std::uint64_t> Exact(const Model& m, const std::vector<float>& q, std::size_t k) {
  std::vector<std::pair<float, std::uint64_t>> all;
  for (const auto& [label, v] : m) {
    float d = 0;
    for (std::size_t j = 0; j < kDim; j++) d += (v[j] - q[j]) * (v[j] - q[j]);
    all.emplace_back(d, label);
  }
  std::sort(all.begin(), all.end());
  std::vector<std::uint64_t> out;
  for (std::size_t i = 0; i < k && i < all.size(); i++) out.push_back(all[i].second);
  return out;
}

bool Holds(const panns::LiveIndex& live, const Model& m) {
  if (live.size() != m.size()) return false;
  for (const auto& [label, v] : m) {
    if (!live.contains(label) || live.get(label) != v) return false;
  }
  return true;
}

std::vector<std::uint64_t> Labels(std::size_t n, std::uint64_t start, std::uint64_t step) {
  std::vector<std::uint64_t> out(n);
  for (std::size_t i = 0; i < n; i++) out[i] = start + i * step;
  return out;
}

}  // namespace

TEST(Live, AddSearchRemoveCommitRefreshCompact) {
  TempDir dir;
  const std::string path = dir / "live.panns";
  panns::BuildOptions o = panns::default_build_options();
  o.n_trees = 16;
  auto w = panns::LiveIndex::create(path, kDim, panns::Metric::Euclidean, o);
  EXPECT_TRUE(w.writable());
  Model m;
  const auto labels = Labels(1500, 1u << 20, 5);
  const auto rows = RandomRows(1500, 1);
  AddTo(w, m, labels, rows);
  EXPECT_EQ(w.pending(), 1500u);
  const std::vector<float> q0(rows.begin() + 7 * kDim, rows.begin() + 8 * kDim);
  auto hits = w.search(q0, 3);
  ASSERT_EQ(hits.size(), 3u);
  EXPECT_EQ(hits[0].label, labels[7]);
  EXPECT_EQ(hits[0].distance, 0.0f);
  // A reader sees nothing until commit + refresh.
  auto r = panns::LiveIndex::open(path, false);
  EXPECT_FALSE(r.writable());
  EXPECT_EQ(r.size(), 0u);
  w.commit();
  EXPECT_TRUE(r.refresh());
  EXPECT_FALSE(r.refresh());
  EXPECT_TRUE(Holds(r, m));
  w.compact();
  EXPECT_EQ(w.generation(), 1u);
  EXPECT_EQ(w.base_size(), 1500u);
  // Churn: remove 100, replace 50, add 100.
  std::vector<std::uint64_t> gone(labels.begin(), labels.begin() + 100);
  EXPECT_EQ(w.remove(gone), 100u);
  EXPECT_EQ(w.remove(gone), 0u);
  for (auto l : gone) m.erase(l);
  AddTo(w, m, std::vector<std::uint64_t>(labels.begin() + 500, labels.begin() + 550), RandomRows(50, 2));
  AddTo(w, m, Labels(100, 3, 5), RandomRows(100, 3));
  EXPECT_EQ(w.tombstones(), 150u);
  EXPECT_EQ(w.delta_size(), 150u);
  EXPECT_TRUE(Holds(w, m));
  for (auto l : gone) EXPECT_FALSE(w.contains(l));
  // Recall against the exact scan at a budget well below half the items.
  std::size_t found = 0, total = 0;
  const auto qs = RandomRows(40, 4);
  for (std::size_t i = 0; i < 40; i++) {
    std::vector<float> q(qs.begin() + i * kDim, qs.begin() + (i + 1) * kDim);
    auto res = w.search_with_stats(q, 10, 300);
    EXPECT_FALSE(res.stats.exact_scan);
    auto want = Exact(m, q, 10);
    for (const auto& h : res.neighbors) {
      EXPECT_TRUE(m.count(h.label) == 1);
      found += std::count(want.begin(), want.end(), h.label);
    }
    total += want.size();
  }
  const double recall = static_cast<double>(found) / static_cast<double>(total);
  std::cout << "live recall@10 at budget 300 after churn: " << recall << "\n";
  EXPECT_GE(recall, 0.8);
  // The reader follows: generation 1, then the churned state after the commit.
  EXPECT_TRUE(r.refresh());
  EXPECT_EQ(r.generation(), 1u);
  w.commit();
  EXPECT_TRUE(r.refresh());
  EXPECT_TRUE(Holds(r, m));
  // Range search at a budget covering every item: the exact ball, nearest first.
  {
    std::vector<float> q(qs.begin(), qs.begin() + kDim);
    auto want = Exact(m, q, 6);
    float d6 = 0;
    for (std::size_t j = 0; j < kDim; j++) d6 += (m[want[5]][j] - q[j]) * (m[want[5]][j] - q[j]);
    bool cut = true;
    auto ball = r.range_search(q, std::sqrt(d6) * 1.00001f, 100, 1u << 30, &cut);
    EXPECT_FALSE(cut);
    ASSERT_TRUE(ball.size() >= 6);
    for (std::size_t i = 0; i < 6; i++) EXPECT_EQ(ball[i].label, want[i]);
    EXPECT_EQ(r.range_search(q, 1e9f, 3, 0, &cut).size(), 3u);
    EXPECT_TRUE(cut);
    EXPECT_PANNS_ERROR(r.range_search(q, -1.0f, 3), PANNS_INVALID_ARGUMENT, "radius");
  }
  // Batch search agrees with single searches; writer and reader agree.
  auto batch = r.search_batch(qs, 5, 100);
  ASSERT_EQ(batch.size(), 40u);
  for (std::size_t i = 0; i < 40; i++) {
    std::vector<float> q(qs.begin() + i * kDim, qs.begin() + (i + 1) * kDim);
    EXPECT_TRUE(batch[i] == r.search(q, 5, 100));
    EXPECT_TRUE(w.search(q, 5, 100) == r.search(q, 5, 100));
  }
  // Concurrent searches of one reader agree with the single-thread answers.
  std::vector<std::thread> threads;
  std::vector<int> bad(4, 0);
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&, t] {
      for (std::size_t i = 0; i < 40; i++) {
        std::vector<float> q(qs.begin() + i * kDim, qs.begin() + (i + 1) * kDim);
        if (r.search(q, 5, 100) != batch[i]) bad[t]++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad[0] + bad[1] + bad[2] + bad[3], 0);
}

TEST(Live, LockReadOnlyAndMoves) {
  TempDir dir;
  const std::string path = dir / "lock.panns";
  auto w = panns::LiveIndex::create(path, kDim, panns::Metric::Angular);
  EXPECT_PANNS_ERROR(panns::LiveIndex::open(path, true), PANNS_LOCKED, "another writer");
  auto r = panns::LiveIndex::open(path, false);
  const auto rows = RandomRows(1, 5);
  EXPECT_PANNS_ERROR(r.add({1}, rows), PANNS_READ_ONLY, "read-only");
  EXPECT_PANNS_ERROR(r.commit(), PANNS_READ_ONLY, "read-only");
  // Moving transfers the lock; destroying the owner releases it.
  panns::LiveIndex moved = std::move(w);
  EXPECT_FALSE(static_cast<bool>(w));
  EXPECT_TRUE(moved.writable());
  EXPECT_PANNS_ERROR(w.commit(), PANNS_NULL_POINTER, "live");
  { panns::LiveIndex gone = std::move(moved); }
  auto w2 = panns::LiveIndex::open(path, true);
  EXPECT_TRUE(w2.writable());
}

TEST(Live, BadBatchesApplyNothing) {
  TempDir dir;
  auto w = panns::LiveIndex::create(dir / "bad.panns", kDim, panns::Metric::Angular);
  auto rows = RandomRows(3, 6);
  w.add({1, 2, 3}, rows);
  auto bad = rows;
  bad[kDim + 2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_PANNS_ERROR(w.add({7, 8, 9}, bad), PANNS_NON_FINITE, "batch row 1 (label 8)");
  bad = rows;
  std::fill(bad.begin() + 2 * kDim, bad.end(), 0.0f);
  EXPECT_PANNS_ERROR(w.add({7, 8, 9}, bad), PANNS_ZERO_VECTOR, "batch row 2");
  EXPECT_PANNS_ERROR(w.add({7, 8, 7}, rows), PANNS_INVALID_ARGUMENT, "also on row 0");
  EXPECT_PANNS_ERROR(w.add({7, 8}, rows), PANNS_DIMENSION_MISMATCH, "expected 10");
  EXPECT_PANNS_ERROR(w.add({7, 8, 9}, std::vector<float>(rows.begin(), rows.begin() + 29)), PANNS_DIMENSION_MISMATCH,
                     "3 labels for 29 floats");
  EXPECT_EQ(w.size(), 3u);
  EXPECT_FALSE(w.contains(7) || w.contains(8) || w.contains(9));
  EXPECT_PANNS_ERROR(w.get(99), PANNS_OUT_OF_RANGE, "label 99");
  EXPECT_PANNS_ERROR(w.search(std::vector<float>(kDim, 0.0f), 1), PANNS_ZERO_VECTOR, "query");
  EXPECT_PANNS_ERROR(w.search(std::vector<float>(3, 1.0f), 1), PANNS_DIMENSION_MISMATCH, "");
  EXPECT_PANNS_ERROR(panns::LiveIndex::open(dir / "none.panns", false), PANNS_IO, "no live index here");
  // from_index: labels for every item, or none.
  panns::Builder b(kDim, panns::Metric::Euclidean);
  const auto base = RandomRows(50, 7);
  b.add_batch(base, kDim);
  panns::Index ix = b.build();
  EXPECT_PANNS_ERROR(panns::LiveIndex::from_index(ix, dir / "f.panns", {1, 2}), PANNS_INVALID_ARGUMENT,
                     "n_labels = 2");
  auto f = panns::LiveIndex::from_index(ix, dir / "f.panns", Labels(50, 900, 1));
  std::vector<float> q(base.begin() + 9 * kDim, base.begin() + 10 * kDim);
  EXPECT_EQ(f.search(q, 1)[0].label, 909u);
  EXPECT_EQ(f.generation(), 1u);
}

TEST(Live, InMemoryAndSave) {
  TempDir dir;
  panns::Builder b(kDim, panns::Metric::Euclidean);
  const auto rows = RandomRows(300, 8);
  b.add_batch(rows, kDim);
  const auto labels = Labels(300, 40, 3);
  auto m = [&] {
    panns::Index ix = b.build();
    return panns::LiveIndex::in_memory(ix, labels);  // the index is freed here: m has a copy
  }();
  EXPECT_TRUE(m.is_in_memory() && m.writable());
  Model model;
  for (std::size_t i = 0; i < 300; i++) {
    model[labels[i]] = std::vector<float>(rows.begin() + i * kDim, rows.begin() + (i + 1) * kDim);
  }
  EXPECT_EQ(m.remove({labels[0], labels[1]}), 2u);
  model.erase(labels[0]);
  model.erase(labels[1]);
  AddTo(m, model, {labels[9], 1, 2}, RandomRows(3, 9));
  m.commit();
  EXPECT_TRUE(Holds(m, model));
  const auto qs = RandomRows(10, 10);
  for (std::size_t i = 0; i < 10; i++) {
    std::vector<float> q(qs.begin() + i * kDim, qs.begin() + (i + 1) * kDim);
    auto hits = m.search(q, 5);
    std::vector<std::uint64_t> got;
    for (const auto& h : hits) got.push_back(h.label);
    EXPECT_TRUE(got == Exact(model, q, 5));
  }
  m.compact();
  EXPECT_EQ(m.generation(), 2u);
  m.save(dir / "saved.panns");
  auto r = panns::LiveIndex::open(dir / "saved.panns", false);
  EXPECT_FALSE(r.is_in_memory());
  EXPECT_TRUE(Holds(r, model));
  auto e = panns::LiveIndex::in_memory(kDim, panns::Metric::Angular);
  EXPECT_PANNS_ERROR(e.save(dir / "empty.panns"), PANNS_INVALID_ARGUMENT, "no items");
}

namespace {

/// The exact k nearest labels among those `allow` accepts (squared L2, ties by label).
std::vector<std::uint64_t> ExactAllowed(const Model& m, const std::vector<float>& q, std::size_t k,
                                        const std::function<bool(std::uint64_t)>& allow) {
  Model kept;
  for (const auto& [label, v] : m) {
    if (allow(label)) kept[label] = v;
  }
  return Exact(kept, q, k);
}

std::vector<std::uint64_t> LabelsOf(const std::vector<panns::LiveNeighbor>& hits) {
  std::vector<std::uint64_t> out;
  for (const auto& h : hits) out.push_back(h.label);
  return out;
}

}  // namespace

// Filtered search of a live index: allow-list, deny-list and predicate agree with each other
// and with an exact scan over the allowed live labels (at a budget covering every item); at a
// budget well below n/2 they return only allowed live labels with good recall and change the
// unfiltered answer; removed and unknown labels match nothing.
TEST(Live, FilteredSearchByLabel) {
  const std::size_t n = 1500;
  auto live = panns::LiveIndex::in_memory(kDim, panns::Metric::Euclidean);
  Model model;
  const auto labels = Labels(n, 7000, 3);
  AddTo(live, model, labels, RandomRows(n, 21));
  live.compact();
  std::vector<std::uint64_t> gone;
  for (std::size_t i = 0; i < n; i += 30) gone.push_back(labels[i]);
  EXPECT_EQ(live.remove(gone), gone.size());
  for (auto l : gone) model.erase(l);
  AddTo(live, model, Labels(80, 1, 1), RandomRows(80, 22));  // the delta
  auto even = [](std::uint64_t l) { return l % 2 == 0; };
  std::vector<std::uint64_t> allow, deny;
  for (const auto& [label, v] : model) (even(label) ? allow : deny).push_back(label);
  for (auto l : gone) allow.push_back(l);  // removed: never returned
  allow.push_back(100);                    // never held
  const auto by_list = panns::LabelFilter::allow_labels(allow);
  const auto by_deny = panns::LabelFilter::deny_labels(deny);
  const auto by_pred = panns::LabelFilter::allow_if(even);
  const std::size_t k = 10, small = 100, all = 20 * n;
  const auto qs = RandomRows(30, 23);
  std::size_t found = 0, total = 0, differs = 0;
  for (std::size_t i = 0; i < 30; i++) {
    std::vector<float> q(qs.begin() + i * kDim, qs.begin() + (i + 1) * kDim);
    const auto truth = ExactAllowed(model, q, k, even);
    EXPECT_TRUE(LabelsOf(live.search_filtered(q, k, all, by_list)) == truth);
    EXPECT_TRUE(LabelsOf(live.search_filtered(q, k, all, even)) == truth);
    const auto a = live.search_filtered(q, k, small, by_list);
    EXPECT_TRUE(a == live.search_filtered(q, k, small, by_deny));
    EXPECT_TRUE(a == live.search_filtered(q, k, small, by_pred));
    EXPECT_TRUE(a == live.search_filtered(q, k, small, allow));  // the label-vector overload
    EXPECT_EQ(a.size(), k);
    for (std::size_t j = 0; j < a.size(); j++) {
      EXPECT_TRUE(even(a[j].label) && model.count(a[j].label) == 1);
      if (j > 0) {
        EXPECT_LE(a[j - 1].distance, a[j].distance);
      }
      found += std::count(truth.begin(), truth.end(), a[j].label);
    }
    total += truth.size();
    differs += LabelsOf(live.search(q, k, small)) != LabelsOf(a);
    // The default filter is the plain search.
    EXPECT_TRUE(live.search_filtered(q, k, small, panns::LabelFilter()) == live.search(q, k, small));
  }
  const double recall = static_cast<double>(found) / static_cast<double>(total);
  std::cout << "filtered live recall@10 at budget 100 (half allowed): " << recall << "\n";
  EXPECT_GE(recall, 0.8);
  EXPECT_GE(differs, 28u);
  std::vector<float> q(qs.begin(), qs.begin() + kDim);
  EXPECT_TRUE(live.search_filtered(q, k, small, std::vector<std::uint64_t>{}).empty());
  EXPECT_TRUE(live.search_filtered(q, k, all, gone).empty());
  EXPECT_TRUE(live.search_filtered(q, k, all, std::vector<std::uint64_t>{100, 6000, std::uint64_t{1} << 40}).empty());
  // Batch: the rows of single searches; short rows are short.
  const auto rows = live.search_batch_filtered(qs, k, small, by_pred);
  EXPECT_EQ(rows.size(), 30u);
  for (std::size_t i = 0; i < rows.size(); i++) {
    std::vector<float> qi(qs.begin() + i * kDim, qs.begin() + (i + 1) * kDim);
    EXPECT_TRUE(rows[i] == live.search_filtered(qi, k, small, by_pred));
  }
  const auto two = live.search_batch_filtered(qs, k, small, panns::LabelFilter::allow_labels({deny[0], deny[1]}));
  for (const auto& row : two) EXPECT_EQ(row.size(), 2u);
}

TEST(Live, APredicatesExceptionStopsTheFilteredSearchAndIsRethrown) {
  auto live = panns::LiveIndex::in_memory(kDim, panns::Metric::Euclidean);
  Model model;
  AddTo(live, model, Labels(800, 10, 1), RandomRows(800, 31));
  live.compact();
  const auto qs = RandomRows(16, 32);
  std::vector<float> q(qs.begin(), qs.begin() + kDim);
  int calls = 0;
  bool caught = false;
  try {
    live.search_filtered(q, 5, 50, [&](std::uint64_t) -> bool {
      if (++calls == 4) throw std::runtime_error("no more");
      return true;
    });
  } catch (const std::runtime_error& e) {
    caught = std::string(e.what()) == "no more";
  }
  EXPECT_TRUE(caught);
  EXPECT_EQ(calls, 4);
  std::atomic<int> batch_calls{0};
  caught = false;
  try {
    live.search_batch_filtered(qs, 5, 50, panns::LabelFilter::allow_if([&](std::uint64_t) -> bool {
                                 if (++batch_calls == 20) throw std::logic_error("stop");
                                 return true;
                               }));
  } catch (const std::logic_error&) {
    caught = true;
  }
  EXPECT_TRUE(caught);
  // A C error is still a panns::Error, and the index works afterwards.
  EXPECT_PANNS_ERROR(live.search_filtered(std::vector<float>(kDim + 1, 1.0f), 5, 0, panns::LabelFilter()),
                     PANNS_DIMENSION_MISMATCH, "");
  EXPECT_EQ(live.search_filtered(q, 5, 50, [](std::uint64_t) { return true; }).size(), 5u);
}
