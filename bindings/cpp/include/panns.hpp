// panns.hpp: header-only C++17 wrapper of the panns C API (panns.h).
//
// RAII, move-only handles (panns::Builder, panns::Index, panns::LiveIndex); every failure of the C API is
// thrown as panns::Error carrying the PannsStatus and the library's message. A
// panns::Index may be searched from many threads at once; a panns::Builder may not.
//
//   panns::Builder b(3, panns::Metric::Euclidean);
//   b.add({1.0f, 2.0f, 3.0f});
//   panns::Index index = b.build();
//   std::vector<panns::Neighbor> hits = index.search({1.0f, 2.0f, 3.1f}, 1);
#ifndef PANNS_HPP
#define PANNS_HPP

#include <panns.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace panns {

/// Distance metric of an index.
enum class Metric : std::uint32_t {
  Euclidean = PANNS_EUCLIDEAN,  ///< L2 distance.
  Angular = PANNS_ANGULAR,      ///< Cosine distance 1 - cos(a, b); vectors are normalised on insert.
  Dot = PANNS_DOT,              ///< Negative inner product -(a . b).
};

/// How an index stores its vectors (Index::dtype, Index::set_dtype); the codes of the C
/// API's PannsDtype.
enum class Dtype : std::uint32_t {
  F32 = 0,  ///< 32-bit floats, as given (the default).
  I8 = 1,   ///< One byte per component with a per-component range (scalar quantization):
            ///< a quarter of the bytes; distances are those to the decoded vectors.
  I8_F32 = 2,  ///< Both: walks score the codes, the best candidates are re-ranked from the
               ///< f32 vectors kept beside them (exact distances; 1.25x the f32 bytes).
};

/// A failed panns call: the C status code and the library's message.
class Error : public std::runtime_error {
 public:
  Error(PannsStatus status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  /// The status code (PANNS_NULL_POINTER, PANNS_DIMENSION_MISMATCH, ...).
  PannsStatus status() const noexcept { return status_; }

 private:
  PannsStatus status_;
};

namespace detail {
/// Throws the calling thread's last panns error unless `status` is PANNS_OK.
inline void check(PannsStatus status) {
  if (status != PANNS_OK) {
    const char* msg = panns_last_error_message();
    throw Error(status, msg != nullptr ? msg : "");
  }
}
}  // namespace detail

/// One search result.
struct Neighbor {
  std::uint32_t id;  ///< Item id (insertion order, from 0).
  float distance;    ///< Distance to the query under the index metric.
  bool operator==(const Neighbor& o) const noexcept { return id == o.id && distance == o.distance; }
  bool operator!=(const Neighbor& o) const noexcept { return !(*this == o); }
};

/// Build parameters (the C struct): n_trees, leaf_size, pool_size, candidates, split,
/// threads, seed. Start from default_build_options().
using BuildOptions = PannsBuildOptions;

/// The library's default build parameters.
inline BuildOptions default_build_options() { return panns_build_options_default(); }

/// What one search did (Index::search_with_stats).
struct SearchStats {
  std::size_t scored = 0;   ///< Distinct items whose exact distance was computed.
  std::size_t budget = 0;   ///< The effective budget (default or given, at least k, at most size()).
  bool exact_scan = false;  ///< True when 2 * budget >= size() and every item was scanned.
};

/// Neighbours plus what the search did.
struct SearchResult {
  std::vector<Neighbor> neighbors;  ///< Nearest first, ties by id.
  SearchStats stats;                ///< Exact scan or approximate path, budget, items scored.
};

namespace detail {
/// The state of one search with a C++ predicate (Filter::allow_if, LabelFilter::allow_if):
/// the C callback that calls it and the first exception it threw. No exception crosses the
/// C callback: the trampoline catches it, returns -1 (the search then stops with
/// PANNS_CALLBACK_FAILED) and check() rethrows it. Used by Filter::Call and
/// LabelFilter::Call; not for direct use.
class PredicateCall {
 public:
  explicit PredicateCall(const std::function<bool(std::uint64_t)>* pred) noexcept : pred_(pred) {}
  PredicateCall(const PredicateCall&) = delete;
  PredicateCall& operator=(const PredicateCall&) = delete;
  /// Rethrows the predicate's exception, if any; else throws the C error of `status`.
  void check(PannsStatus status) {
    if (status == PANNS_CALLBACK_FAILED) {
      std::exception_ptr e;
      {
        std::lock_guard<std::mutex> lock(mu_);
        e = error_;
      }
      if (e) std::rethrow_exception(e);
    }
    detail::check(status);
  }

 protected:
  /// The C predicate (PannsFilterFn, PannsLabelFilterFn): `user_data` is this object.
  static int trampoline(std::uint64_t key, void* user_data) noexcept {
    PredicateCall* self = static_cast<PredicateCall*>(user_data);
    try {
      return (*self->pred_)(key) ? 1 : 0;
    } catch (...) {
      std::lock_guard<std::mutex> lock(self->mu_);
      if (!self->error_) self->error_ = std::current_exception();
      return -1;
    }
  }
  /// The `user_data` the trampoline expects.
  void* self() noexcept { return static_cast<PredicateCall*>(this); }

 private:
  const std::function<bool(std::uint64_t)>* pred_;
  std::mutex mu_;
  std::exception_ptr error_;
};
}  // namespace detail

/// A filter prepared once by Index::prepare_filter for many searches of that index (the C
/// PannsAllowList): the allowed items as a bitmap and an ascending id list, held by the
/// library. Pass it wherever a Filter is taken (it converts implicitly): the results and
/// statistics are those of the filter it was made from, without counting and listing the
/// allowed items on every call. Immutable, so many threads may search with it at once. Copies
/// share the one list, which is freed with the last copy (Filters made from it hold a copy,
/// so it outlives the searches using it). It holds no reference to the index; a search of an
/// index with another item count throws PANNS_INVALID_ARGUMENT.
class AllowList {
 public:
  /// No list (a search with it throws PANNS_NULL_POINTER).
  AllowList() = default;
  /// Takes ownership of a handle from panns_allow_list_new (freed with panns_allow_list_free).
  explicit AllowList(PannsAllowList* handle) : ptr_(handle, &panns_allow_list_free) {}
  /// Number of allowed items (0 for an empty object).
  std::size_t size() const noexcept { return panns_allow_list_len(ptr_.get()); }
  /// Item count of the index the list was made for (0 for an empty object).
  std::size_t items() const noexcept { return panns_allow_list_items(ptr_.get()); }
  /// The C handle (still owned by this object and its copies).
  const PannsAllowList* get() const noexcept { return ptr_.get(); }
  /// True unless empty.
  explicit operator bool() const noexcept { return ptr_ != nullptr; }

 private:
  std::shared_ptr<PannsAllowList> ptr_;
};

/// Which items a search may return (Index::search_filtered, search_batch_filtered,
/// range_search, prepare_filter). The default Filter allows every item. A Filter owns copies
/// of its mask, bitmap or ids (or shares its AllowList), so it may be kept and reused; an
/// allow_if predicate is called once per candidate (from several threads at once in
/// search_batch_filtered), and an exception it throws stops the search and is rethrown to
/// the caller of the search.
class Filter {
 public:
  /// Every item.
  Filter() = default;
  /// The items of a prepared AllowList (Index::prepare_filter); implicit, so an AllowList
  /// may be passed wherever a Filter is taken.
  Filter(AllowList list) : kind_(PANNS_FILTER_ALLOW_LIST), list_(std::move(list)) {}  // NOLINT
  /// The items i with mask[i] true; mask.size() must be the index's size().
  static Filter allow_mask(const std::vector<bool>& mask) { return from_mask(PANNS_FILTER_ALLOW_BITMAP, mask); }
  /// Every item except those with mask[i] true (e.g. deleted items).
  static Filter deny_mask(const std::vector<bool>& mask) { return from_mask(PANNS_FILTER_DENY_BITMAP, mask); }
  /// The items whose bit is set (bit i % 64 of words[i / 64]); n_bits must be size().
  static Filter allow_bitmap(std::vector<std::uint64_t> words, std::size_t n_bits) {
    return from_bits(PANNS_FILTER_ALLOW_BITMAP, std::move(words), n_bits);
  }
  /// Every item except those whose bit is set.
  static Filter deny_bitmap(std::vector<std::uint64_t> words, std::size_t n_bits) {
    return from_bits(PANNS_FILTER_DENY_BITMAP, std::move(words), n_bits);
  }
  /// Only the listed items (an empty list allows nothing; an id >= size() throws
  /// PANNS_OUT_OF_RANGE at search time).
  static Filter allow_ids(std::vector<std::uint32_t> ids) { return from_ids(PANNS_FILTER_ALLOW_IDS, std::move(ids)); }
  /// Every item except the listed ones.
  static Filter deny_ids(std::vector<std::uint32_t> ids) { return from_ids(PANNS_FILTER_DENY_IDS, std::move(ids)); }
  /// The items for which `pred(id)` is true.
  static Filter allow_if(std::function<bool(std::uint64_t)> pred) {
    Filter f;
    f.kind_ = PANNS_FILTER_PREDICATE;
    f.pred_ = std::move(pred);
    return f;
  }

  /// The state of one search with this filter: the C struct and, for a predicate, the
  /// first exception it threw (rethrown by check()). Used by Index; not for direct use.
  class Call : public detail::PredicateCall {
   public:
    explicit Call(const Filter& f) : detail::PredicateCall(&f.pred_) {
      c_ = PannsFilter{};
      c_.kind = f.kind_;
      c_.bits = f.bits_.empty() ? nullptr : f.bits_.data();
      c_.n_bits = f.n_bits_;
      c_.ids = f.ids_.empty() ? nullptr : f.ids_.data();
      c_.n_ids = f.ids_.size();
      if (f.kind_ == PANNS_FILTER_PREDICATE && f.pred_) {
        c_.predicate = &Call::trampoline;
        c_.user_data = self();
      }
      if (f.kind_ == PANNS_FILTER_ALLOW_LIST) {
        // The library only reads the list.
        c_.user_data = const_cast<PannsAllowList*>(f.list_.get());
      }
    }
    /// The C filter (valid while this object lives).
    const PannsFilter* get() const noexcept { return &c_; }

   private:
    PannsFilter c_;
  };

 private:
  static Filter from_mask(std::uint32_t kind, const std::vector<bool>& mask) {
    std::vector<std::uint64_t> words((mask.size() + 63) / 64);
    for (std::size_t i = 0; i < mask.size(); i++) {
      if (mask[i]) words[i / 64] |= std::uint64_t{1} << (i % 64);
    }
    return from_bits(kind, std::move(words), mask.size());
  }
  static Filter from_bits(std::uint32_t kind, std::vector<std::uint64_t> words, std::size_t n_bits) {
    if (words.size() < (n_bits + 63) / 64) {
      throw Error(PANNS_INVALID_ARGUMENT, "the filter bitmap has " + std::to_string(words.size()) + " words, " +
                                              std::to_string(n_bits) + " bits need " +
                                              std::to_string((n_bits + 63) / 64));
    }
    Filter f;
    f.kind_ = kind;
    f.bits_ = std::move(words);
    f.n_bits_ = n_bits;
    return f;
  }
  static Filter from_ids(std::uint32_t kind, std::vector<std::uint32_t> ids) {
    Filter f;
    f.kind_ = kind;
    f.ids_ = std::move(ids);
    return f;
  }
  std::uint32_t kind_ = PANNS_FILTER_ALL;
  std::vector<std::uint64_t> bits_;
  std::size_t n_bits_ = 0;
  std::vector<std::uint32_t> ids_;
  std::function<bool(std::uint64_t)> pred_;
  AllowList list_;
};

/// Which labels a live-index search may return (LiveIndex::search_filtered,
/// search_batch_filtered). The default LabelFilter allows every label. A LabelFilter owns a
/// copy of its labels, so it may be kept and reused. A listed label the index does not hold
/// (never added, or removed) matches nothing, and a removed label is never returned whatever
/// the filter says. An allow_if predicate is called once per candidate (from several threads
/// at once in search_batch_filtered); an exception it throws stops the search and is
/// rethrown to the caller of the search (it never crosses the C library).
class LabelFilter {
 public:
  /// Every label.
  LabelFilter() = default;
  /// Only the listed labels (an empty list allows nothing).
  static LabelFilter allow_labels(std::vector<std::uint64_t> labels) {
    return from_labels(PANNS_LABEL_FILTER_ALLOW_LABELS, std::move(labels));
  }
  /// Every label except the listed ones.
  static LabelFilter deny_labels(std::vector<std::uint64_t> labels) {
    return from_labels(PANNS_LABEL_FILTER_DENY_LABELS, std::move(labels));
  }
  /// The labels for which `pred(label)` is true.
  static LabelFilter allow_if(std::function<bool(std::uint64_t)> pred) {
    LabelFilter f;
    f.kind_ = PANNS_LABEL_FILTER_PREDICATE;
    f.pred_ = std::move(pred);
    return f;
  }

  /// The state of one search with this filter: the C struct and, for a predicate, the
  /// first exception it threw (rethrown by check()). Used by LiveIndex; not for direct use.
  class Call : public detail::PredicateCall {
   public:
    explicit Call(const LabelFilter& f) : detail::PredicateCall(&f.pred_) {
      c_ = PannsLabelFilter{};
      c_.kind = f.kind_;
      c_.labels = f.labels_.empty() ? nullptr : f.labels_.data();
      c_.n_labels = f.labels_.size();
      if (f.kind_ == PANNS_LABEL_FILTER_PREDICATE && f.pred_) {
        c_.predicate = &Call::trampoline;
        c_.user_data = self();
      }
    }
    /// The C filter (valid while this object lives).
    const PannsLabelFilter* get() const noexcept { return &c_; }

   private:
    PannsLabelFilter c_;
  };

 private:
  static LabelFilter from_labels(std::uint32_t kind, std::vector<std::uint64_t> labels) {
    LabelFilter f;
    f.kind_ = kind;
    f.labels_ = std::move(labels);
    return f;
  }
  std::uint32_t kind_ = PANNS_LABEL_FILTER_ALL;
  std::vector<std::uint64_t> labels_;
  std::function<bool(std::uint64_t)> pred_;
};

/// The result of Index::range_search.
struct RangeResult {
  std::vector<Neighbor> neighbors;  ///< Every (allowed) item within the radius found, nearest first.
  bool truncated = false;           ///< True when more were within the radius than max_results.
};

/// A short static description of a status code, e.g. "dimension mismatch".
inline const char* status_string(PannsStatus status) noexcept { return panns_status_string(status); }

/// The library version, e.g. "1.1.0".
inline std::string version() { return panns_version(); }

/// A built index, owned in memory or memory-mapped from a file. Move-only.
class Index {
 public:
  /// Opens an index file (memory-mapped); `verify` also checks the file's checksum.
  static Index open(const std::string& path, bool verify = false) {
    PannsIndex* p = nullptr;
    detail::check(panns_index_open(path.c_str(), verify ? PANNS_OPEN_VERIFY : 0u, &p));
    return Index(p);
  }

  /// Opens an index from the bytes of an index file (to_bytes(), a network message, a
  /// database blob). The bytes are copied: `data` may be freed as soon as this returns.
  /// `verify` also checks the checksum. Throws PANNS_CORRUPT / PANNS_UNSUPPORTED.
  static Index from_bytes(const void* data, std::size_t size, bool verify = false) {
    static const std::uint8_t empty = 0;
    PannsIndex* p = nullptr;
    detail::check(panns_index_open_buffer(size == 0 ? &empty : static_cast<const std::uint8_t*>(data), size,
                                          verify ? PANNS_OPEN_VERIFY : 0u, &p));
    return Index(p);
  }
  /// As above, for a byte vector.
  static Index from_bytes(const std::vector<std::uint8_t>& bytes, bool verify = false) {
    return from_bytes(bytes.data(), bytes.size(), verify);
  }

  /// Takes ownership of a handle from the C API (NULL gives an empty index object).
  explicit Index(PannsIndex* handle) noexcept : ptr_(handle) {}
  Index(const Index&) = delete;
  Index& operator=(const Index&) = delete;
  Index(Index&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)) {}
  Index& operator=(Index&& o) noexcept {
    if (this != &o) {
      panns_index_free(ptr_);
      ptr_ = std::exchange(o.ptr_, nullptr);
    }
    return *this;
  }
  ~Index() { panns_index_free(ptr_); }

  /// Saves to `path` atomically.
  void save(const std::string& path) const { detail::check(panns_index_save(ptr_, path.c_str())); }

  /// The length in bytes of to_bytes() (and of the file save() writes).
  std::size_t serialized_size() const {
    std::size_t len = 0;
    detail::check(panns_index_serialized_len(ptr_, &len));
    return len;
  }
  /// The index in the file format, as bytes (open them again with from_bytes()).
  std::vector<std::uint8_t> to_bytes() const {
    std::vector<std::uint8_t> bytes(serialized_size());
    std::size_t written = 0;
    detail::check(panns_index_serialize(ptr_, bytes.empty() ? nullptr : bytes.data(), bytes.size(), &written));
    bytes.resize(written);
    return bytes;
  }

  /// Number of items (0 for a moved-from object).
  std::size_t size() const noexcept { return panns_index_len(ptr_); }
  /// Vector dimension.
  std::uint32_t dim() const noexcept { return panns_index_dim(ptr_); }
  /// Distance metric.
  Metric metric() const noexcept { return static_cast<Metric>(panns_index_metric(ptr_)); }
  /// Number of trees.
  std::size_t n_trees() const noexcept { return panns_index_n_trees(ptr_); }
  /// Neighbours per item of the neighbour graph (0 when the index has none).
  std::uint32_t graph_degree() const noexcept { return panns_index_graph_degree(ptr_); }

  /// Adds (or replaces) a neighbour graph of `degree` neighbours per item (0 = the library
  /// default, 24), built with `threads` workers (0 = all cores; the graph does not depend on
  /// it). With a graph, `budget` in searches is the beam width (like HNSW's ef; 0 = 64), and
  /// high recall needs far fewer distance computations. save() keeps the graph.
  /// Works on an index opened from a file or bytes too (the graph then lives in memory
  /// beside the mapping). Not thread-safe: no other thread may use the index during the
  /// call. Throws panns::Error: PANNS_INVALID_ARGUMENT for a degree above 256,
  /// PANNS_OUT_OF_MEMORY, PANNS_NULL_POINTER when moved from. `exact_graph_build` scores
  /// the build's candidates on exact distances instead of 8-bit codes: slower, with a
  /// lower peak memory (PANNS_GRAPH_EXACT_BUILD).
  void build_graph(std::uint32_t degree = 0, std::uint32_t threads = 0,
                   bool exact_graph_build = false) {
    detail::check(panns_index_build_graph_flags(ptr_, degree, threads,
                                                exact_graph_build ? PANNS_GRAPH_EXACT_BUILD : 0));
  }

  /// How the vectors are stored (Dtype::F32 for a moved-from object).
  Dtype dtype() const noexcept { return static_cast<Dtype>(panns_index_dtype(ptr_)); }

  /// Re-stores the vectors as `dtype`, keeping the trees and the graph: Dtype::I8 encodes
  /// them in one byte per component (a quarter of the bytes; searches then return distances
  /// to the decoded vectors and vector() returns the decoded vector), Dtype::F32 decodes them
  /// (the rounding stays). Build the graph first: on codes it would be built from the decoded
  /// vectors. The change lives in memory (on an opened index too); save() keeps it, and
  /// open() of the saved file gives an index of the same dtype. Not thread-safe: no other
  /// thread may use the index during the call. Nothing to do when the index already has
  /// this dtype. Throws panns::Error: PANNS_INVALID_ARGUMENT for a code that is not a
  /// Dtype (the index is unchanged), PANNS_OUT_OF_MEMORY, PANNS_NULL_POINTER when moved from.
  void set_dtype(Dtype dtype) {
    detail::check(panns_index_set_dtype(ptr_, static_cast<std::uint32_t>(dtype)));
  }

  /// Approximate k nearest neighbours, nearest first; `budget` = candidates to re-rank
  /// (0 = default), or the beam width when the index has a graph (0 = 64).
  std::vector<Neighbor> search(const float* query, std::size_t dim, std::size_t k,
                               std::size_t budget = 0) const {
    return one(k, [&](std::uint32_t* ids, float* ds, std::size_t* n) {
      return panns_index_search(ptr_, query, dim, k, budget, ids, ds, n);
    });
  }
  /// As above, for a query vector of dim() floats.
  std::vector<Neighbor> search(const std::vector<float>& query, std::size_t k,
                               std::size_t budget = 0) const {
    return search(query.data(), query.size(), k, budget);
  }

  /// search() that also reports what the search did: whether it walked the trees (or
  /// graph) or scanned every item (budget covering half the items or more), the
  /// effective budget and the number of items scored.
  SearchResult search_with_stats(const float* query, std::size_t dim, std::size_t k,
                                 std::size_t budget = 0) const {
    PannsSearchStats st{};
    SearchResult r;
    r.neighbors = one(k, [&](std::uint32_t* ids, float* ds, std::size_t* n) {
      return panns_index_search_with_stats(ptr_, query, dim, k, budget, ids, ds, n, &st);
    });
    r.stats.scored = st.scored;
    r.stats.budget = st.budget;
    r.stats.exact_scan = st.exact_scan != 0;
    return r;
  }
  /// As above, for a query vector of dim() floats.
  SearchResult search_with_stats(const std::vector<float>& query, std::size_t k, std::size_t budget = 0) const {
    return search_with_stats(query.data(), query.size(), k, budget);
  }

  /// Exact k nearest neighbours by scanning every item.
  std::vector<Neighbor> linear_search(const float* query, std::size_t dim, std::size_t k) const {
    return one(k, [&](std::uint32_t* ids, float* ds, std::size_t* n) {
      return panns_index_linear_search(ptr_, query, dim, k, ids, ds, n);
    });
  }
  /// As above, for a query vector of dim() floats.
  std::vector<Neighbor> linear_search(const std::vector<float>& query, std::size_t k) const {
    return linear_search(query.data(), query.size(), k);
  }

  /// Searches `n_queries` row-major queries of `dim` floats in parallel on all cores;
  /// result `i` holds query `i`'s neighbours (fewer than k when the index is smaller).
  std::vector<std::vector<Neighbor>> search_batch(const float* queries, std::size_t n_queries,
                                                  std::size_t dim, std::size_t k,
                                                  std::size_t budget = 0) const {
    // Rows past size() would only be padding: ask for at most size() neighbours, so a
    // huge k costs no memory (k = 0 still reaches the library, which rejects it).
    // (size() is 0 only for a moved-from object, which the library reports.)
    const std::size_t n = size();
    const std::size_t kk = k == 0 ? 0 : (k < n ? k : (n == 0 ? 1 : n));
    if (kk != 0 && n_queries > std::numeric_limits<std::size_t>::max() / kk) {
      throw Error(PANNS_INVALID_ARGUMENT, "n_queries * k overflows");
    }
    std::vector<std::uint32_t> ids(n_queries * kk);
    std::vector<float> ds(n_queries * kk);
    // Non-NULL buffers even for n_queries == 0 or k == 0, so the library reports k == 0.
    std::uint32_t id_dummy = 0;
    float d_dummy = 0;
    detail::check(panns_index_search_batch(ptr_, queries, n_queries, dim, kk, budget,
                                           ids.empty() ? &id_dummy : ids.data(),
                                           ds.empty() ? &d_dummy : ds.data()));
    std::vector<std::vector<Neighbor>> out(n_queries);
    for (std::size_t q = 0; q < n_queries; q++) {
      for (std::size_t i = 0; i < kk && ids[q * kk + i] != UINT32_MAX; i++) {
        out[q].push_back(Neighbor{ids[q * kk + i], ds[q * kk + i]});
      }
    }
    return out;
  }
  /// As above, for row-major queries of dim() floats each.
  std::vector<std::vector<Neighbor>> search_batch(const std::vector<float>& queries,
                                                  std::size_t k, std::size_t budget = 0) const {
    const std::size_t d = dim();
    if (d == 0 || queries.size() % d != 0) {
      throw Error(d == 0 ? PANNS_NULL_POINTER : PANNS_DIMENSION_MISMATCH,
                  d == 0 ? "the index is empty (moved from)"
                         : "query buffer of " + std::to_string(queries.size()) +
                               " floats is not a multiple of the dimension " + std::to_string(d));
    }
    return search_batch(queries.data(), queries.size() / d, d, k, budget);
  }

  /// search_with_stats() restricted to the items `filter` allows: the k nearest allowed
  /// items, nearest first (fewer when fewer are allowed; none for an empty filter). When the
  /// budget covers half the allowed items (known for masks, bitmaps and ids), they are
  /// scanned exactly (stats.exact_scan). Throws panns::Error: PANNS_INVALID_ARGUMENT (a
  /// mask or bitmap whose length is not size()), PANNS_OUT_OF_RANGE (an id >= size()); an
  /// exception of an allow_if predicate is rethrown.
  SearchResult search_filtered_with_stats(const float* query, std::size_t dim, std::size_t k, std::size_t budget,
                                          const Filter& filter) const {
    Filter::Call call(filter);
    PannsSearchStats st{};
    SearchResult r;
    r.neighbors = one(
        k,
        [&](std::uint32_t* ids, float* ds, std::size_t* n) {
          return panns_index_search_filtered(ptr_, query, dim, k, budget, call.get(), ids, ds, n, &st);
        },
        [&](PannsStatus s) { call.check(s); });
    r.stats.scored = st.scored;
    r.stats.budget = st.budget;
    r.stats.exact_scan = st.exact_scan != 0;
    return r;
  }
  /// As above, for a query vector of dim() floats.
  SearchResult search_filtered_with_stats(const std::vector<float>& query, std::size_t k, std::size_t budget,
                                          const Filter& filter) const {
    return search_filtered_with_stats(query.data(), query.size(), k, budget, filter);
  }
  /// The k nearest items `filter` allows (see search_filtered_with_stats()).
  std::vector<Neighbor> search_filtered(const std::vector<float>& query, std::size_t k, std::size_t budget,
                                        const Filter& filter) const {
    return search_filtered_with_stats(query, k, budget, filter).neighbors;
  }
  /// The k nearest items i with mask[i] true (mask.size() must be size()).
  std::vector<Neighbor> search_filtered(const std::vector<float>& query, std::size_t k, std::size_t budget,
                                        const std::vector<bool>& mask) const {
    return search_filtered(query, k, budget, Filter::allow_mask(mask));
  }
  /// The k nearest of the listed items.
  std::vector<Neighbor> search_filtered(const std::vector<float>& query, std::size_t k, std::size_t budget,
                                        const std::vector<std::uint32_t>& ids) const {
    return search_filtered(query, k, budget, Filter::allow_ids(ids));
  }
  /// The k nearest items for which pred(id) is true (its exceptions are rethrown).
  std::vector<Neighbor> search_filtered(const std::vector<float>& query, std::size_t k, std::size_t budget,
                                        std::function<bool(std::uint64_t)> pred) const {
    return search_filtered(query, k, budget, Filter::allow_if(std::move(pred)));
  }
  /// Prepares `filter` (any Filter but allow_if, whose items are known only by calling it:
  /// PANNS_INVALID_ARGUMENT) once for many searches of this index: pass the AllowList where
  /// a Filter is taken. A deny filter is inverted once, here. Throws panns::Error as
  /// search_filtered() would for `filter`. Any thread, also during searches.
  AllowList prepare_filter(const Filter& filter) const {
    Filter::Call call(filter);
    PannsAllowList* p = nullptr;
    call.check(panns_allow_list_new(ptr_, call.get(), &p));
    return AllowList(p);
  }
  /// The items i with mask[i] true (mask.size() must be size()), prepared.
  AllowList prepare_filter(const std::vector<bool>& mask) const { return prepare_filter(Filter::allow_mask(mask)); }
  /// The listed items, prepared.
  AllowList prepare_filter(const std::vector<std::uint32_t>& ids) const {
    return prepare_filter(Filter::allow_ids(ids));
  }
  /// search_batch() restricted to the items `filter` allows (one filter for all queries;
  /// an allow_if predicate is called from several threads at once).
  std::vector<std::vector<Neighbor>> search_batch_filtered(const std::vector<float>& queries, std::size_t k,
                                                           std::size_t budget, const Filter& filter) const {
    const std::size_t d = dim();
    if (d == 0 || queries.size() % d != 0) {
      throw Error(d == 0 ? PANNS_NULL_POINTER : PANNS_DIMENSION_MISMATCH,
                  d == 0 ? "the index is empty (moved from)"
                         : "query buffer of " + std::to_string(queries.size()) +
                               " floats is not a multiple of the dimension " + std::to_string(d));
    }
    const std::size_t n_queries = queries.size() / d;
    const std::size_t n = size();
    const std::size_t kk = k == 0 ? 0 : (k < n ? k : n);
    if (kk != 0 && n_queries > std::numeric_limits<std::size_t>::max() / kk) {
      throw Error(PANNS_INVALID_ARGUMENT, "n_queries * k overflows");
    }
    std::vector<std::uint32_t> ids(n_queries * kk);
    std::vector<float> ds(n_queries * kk);
    std::vector<std::size_t> counts(n_queries);
    std::uint32_t id_dummy = 0;
    float d_dummy = 0;
    std::size_t c_dummy = 0;
    const float q_dummy = 0;
    Filter::Call call(filter);
    call.check(panns_index_search_batch_filtered(ptr_, queries.empty() ? &q_dummy : queries.data(), n_queries, d,
                                                 kk, budget, call.get(), ids.empty() ? &id_dummy : ids.data(),
                                                 ds.empty() ? &d_dummy : ds.data(),
                                                 counts.empty() ? &c_dummy : counts.data()));
    std::vector<std::vector<Neighbor>> out(n_queries);
    for (std::size_t q = 0; q < n_queries; q++) {
      for (std::size_t i = 0; i < counts[q]; i++) out[q].push_back(Neighbor{ids[q * kk + i], ds[q * kk + i]});
    }
    return out;
  }
  /// Every item `filter` allows within distance `radius` of the query (as FAISS'
  /// range_search), nearest first, at most max_results; `truncated` when the cap cut the
  /// list. Candidates come from a search with k = max_results + 1 and `budget` (0 = the
  /// default): exact when the budget covers half the allowed items. Throws
  /// PANNS_INVALID_ARGUMENT for a negative or NaN radius or max_results = 0.
  RangeResult range_search(const std::vector<float>& query, float radius, std::size_t max_results,
                           std::size_t budget = 0, const Filter& filter = Filter()) const {
    Filter::Call call(filter);
    std::uint8_t truncated = 0;
    const std::size_t n = size();
    // At most size() items can be within the radius: a huge max_results costs no memory.
    const std::size_t cap = max_results < n || n == 0 ? max_results : n;
    RangeResult r;
    r.neighbors = one(
        cap,
        [&](std::uint32_t* ids, float* ds, std::size_t* count) {
          return panns_index_range_search(ptr_, query.data(), query.size(), radius, cap, budget, call.get(), ids, ds,
                                          count, &truncated);
        },
        [&](PannsStatus s) { call.check(s); });
    r.truncated = truncated != 0 && cap == max_results;
    return r;
  }
  /// The stored vector of item `id` (unit-normalised under the angular metric).
  std::vector<float> vector(std::uint32_t id) const {
    std::vector<float> v(dim());
    float dummy = 0;
    detail::check(panns_index_get_vector(ptr_, id, v.empty() ? &dummy : v.data(), v.size()));
    return v;
  }

  /// The C handle (still owned by this object).
  const PannsIndex* get() const noexcept { return ptr_; }
  /// True unless moved from.
  explicit operator bool() const noexcept { return ptr_ != nullptr; }

 private:
  template <class F>
  std::vector<Neighbor> one(std::size_t k, F&& call) const {
    return one(k, std::forward<F>(call), [](PannsStatus s) { detail::check(s); });
  }
  template <class F, class Check>
  std::vector<Neighbor> one(std::size_t k, F&& call, Check&& check) const {
    // The library writes at most min(k, size()) results.
    const std::size_t room = k < size() ? k : size();
    std::vector<std::uint32_t> ids(room == 0 ? 1 : room);
    std::vector<float> ds(ids.size());
    std::size_t n = 0;
    check(call(ids.data(), ds.data(), &n));
    std::vector<Neighbor> out(n);
    for (std::size_t i = 0; i < n; i++) out[i] = Neighbor{ids[i], ds[i]};
    return out;
  }

  PannsIndex* ptr_;
};

namespace detail {
/// A filtered batch of a labelled index (LiveIndex, ShardedIndex) of dimension `d` and `n`
/// items: checks that `queries` holds whole rows, sizes the buffers for min(k, n) results a
/// row and calls `search(queries, n_queries, kk, labels, distances, counts)` (never with NULL
/// pointers), then keeps each row's `counts[q]` results as `T{label, distance}`. `what` names
/// the index in errors.
template <class T, class Search>
std::vector<std::vector<T>> labeled_batch(const std::vector<float>& queries, std::size_t d, std::size_t n,
                                          std::size_t k, const char* what, Search&& search) {
  if (d == 0 || queries.size() % d != 0) {
    throw Error(d == 0 ? PANNS_NULL_POINTER : PANNS_DIMENSION_MISMATCH,
                d == 0 ? std::string("the ") + what + " is empty (moved from)"
                       : "query buffer of " + std::to_string(queries.size()) +
                             " floats is not a multiple of the dimension " + std::to_string(d));
  }
  const std::size_t nq = queries.size() / d;
  const std::size_t kk = k == 0 ? 0 : (k < n ? k : (n == 0 ? 1 : n));
  if (kk != 0 && nq > std::numeric_limits<std::size_t>::max() / kk) {
    throw Error(PANNS_INVALID_ARGUMENT, "n_queries * k overflows");
  }
  std::vector<std::uint64_t> labels(nq * kk);
  std::vector<float> ds(nq * kk);
  std::vector<std::size_t> counts(nq);
  std::uint64_t l_dummy = 0;
  float d_dummy = 0, q_dummy = 0;
  std::size_t c_dummy = 0;
  search(queries.empty() ? &q_dummy : queries.data(), nq, kk, labels.empty() ? &l_dummy : labels.data(),
         ds.empty() ? &d_dummy : ds.data(), counts.empty() ? &c_dummy : counts.data());
  std::vector<std::vector<T>> out(nq);
  for (std::size_t q = 0; q < nq; q++) {
    for (std::size_t i = 0; i < counts[q]; i++) out[q].push_back(T{labels[q * kk + i], ds[q * kk + i]});
  }
  return out;
}
}  // namespace detail

/// One result of a sharded search.
struct LabeledNeighbor {
  std::uint64_t label;  ///< The item's global label (row in the shards' concatenation, or its stored label).
  float distance;       ///< Distance to the query under the index metric.
  bool operator==(const LabeledNeighbor& o) const noexcept { return label == o.label && distance == o.distance; }
  bool operator!=(const LabeledNeighbor& o) const noexcept { return !(*this == o); }
};

/// The result of ShardedIndex::range_search.
struct LabeledRangeResult {
  std::vector<LabeledNeighbor> neighbors;  ///< Every (allowed) item within the radius found, nearest first.
  bool truncated = false;                  ///< True when more were within the radius than max_results.
};

/// The index shards named by a manifest, searched as one: every query goes to every shard
/// (on the library's threads) and the results are merged exactly by (distance, label).
/// Move-only; may be searched from many threads at once.
class ShardedIndex {
 public:
  /// Opens the manifest at `path` (every shard memory-mapped; `verify` hashes every shard).
  /// Throws PANNS_IO / PANNS_CORRUPT naming a missing, damaged, replaced or mismatched shard.
  static ShardedIndex open(const std::string& path, bool verify = false) {
    PannsShardedIndex* p = nullptr;
    detail::check(panns_sharded_open(path.c_str(), verify ? PANNS_OPEN_VERIFY : 0u, &p));
    return ShardedIndex(p);
  }

  /// Writes a manifest at `manifest` naming the index files `paths` (in order).
  static void write_manifest(const std::string& manifest, const std::vector<std::string>& paths) {
    std::vector<const char*> c;
    for (const std::string& p : paths) c.push_back(p.c_str());
    const char* dummy = nullptr;
    detail::check(panns_sharded_write_manifest(manifest.c_str(), c.empty() ? &dummy : c.data(), c.size()));
  }

  /// Takes ownership of a handle from the C API.
  explicit ShardedIndex(PannsShardedIndex* handle) noexcept : ptr_(handle) {}
  ShardedIndex(const ShardedIndex&) = delete;
  ShardedIndex& operator=(const ShardedIndex&) = delete;
  ShardedIndex(ShardedIndex&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)) {}
  ShardedIndex& operator=(ShardedIndex&& o) noexcept {
    if (this != &o) {
      panns_sharded_free(ptr_);
      ptr_ = std::exchange(o.ptr_, nullptr);
    }
    return *this;
  }
  ~ShardedIndex() { panns_sharded_free(ptr_); }

  /// Total items over all shards.
  std::size_t size() const noexcept { return panns_sharded_len(ptr_); }
  /// Vector dimension.
  std::uint32_t dim() const noexcept { return panns_sharded_dim(ptr_); }
  /// Metric of every shard.
  Metric metric() const noexcept { return static_cast<Metric>(panns_sharded_metric(ptr_)); }
  /// Number of shards.
  std::size_t n_shards() const noexcept { return panns_sharded_n_shards(ptr_); }

  /// The k nearest items over all shards, nearest first, ties by label (each shard searched
  /// with `budget`; 0 = the default).
  std::vector<LabeledNeighbor> search(const float* query, std::size_t dim, std::size_t k,
                                      std::size_t budget = 0) const {
    const std::size_t room = k < size() ? k : size();
    std::vector<std::uint64_t> labels(room == 0 ? 1 : room);
    std::vector<float> ds(labels.size());
    std::size_t n = 0;
    detail::check(panns_sharded_search(ptr_, query, dim, k, budget, labels.data(), ds.data(), &n));
    std::vector<LabeledNeighbor> out(n);
    for (std::size_t i = 0; i < n; i++) out[i] = LabeledNeighbor{labels[i], ds[i]};
    return out;
  }
  /// As above, for a query vector of dim() floats.
  std::vector<LabeledNeighbor> search(const std::vector<float>& query, std::size_t k, std::size_t budget = 0) const {
    return search(query.data(), query.size(), k, budget);
  }
  /// search() restricted to the global labels `filter` allows (LabelFilter, as for live
  /// indexes): an allow-list is planned per shard (an exact scan of its listed items when
  /// few are listed; shards holding none are skipped; unknown labels match nothing); a
  /// deny-list or allow_if walks every shard with the filter, and allow_if is then called
  /// from the shards' threads, several at once (its exceptions are rethrown).
  std::vector<LabeledNeighbor> search_filtered(const float* query, std::size_t dim, std::size_t k,
                                               std::size_t budget, const LabelFilter& filter) const;
  /// As above, for a query vector of dim() floats.
  std::vector<LabeledNeighbor> search_filtered(const std::vector<float>& query, std::size_t k, std::size_t budget,
                                               const LabelFilter& filter) const {
    return search_filtered(query.data(), query.size(), k, budget, filter);
  }

  /// search_batch() restricted to the global labels `filter` allows, one filter for every
  /// query (row-major, dim() floats each): result `i` is what search_filtered gives for
  /// query `i`. An allow_if predicate is called from several threads at once (its
  /// exceptions are rethrown).
  std::vector<std::vector<LabeledNeighbor>> search_batch_filtered(const std::vector<float>& queries, std::size_t k,
                                                                  std::size_t budget,
                                                                  const LabelFilter& filter) const;
  /// Every item `filter` allows within distance `radius` of the query over all shards (as
  /// FAISS' range_search), nearest first, ties by label, at most max_results; `truncated`
  /// when the cap cut the list. Each shard's candidates are its max_results + 1 nearest at
  /// `budget` (0 = the default) and the merge is exact: the answer is exact when the
  /// budget covers half of each shard's items. Throws PANNS_INVALID_ARGUMENT for a
  /// negative or NaN radius or max_results = 0.
  LabeledRangeResult range_search(const std::vector<float>& query, float radius, std::size_t max_results,
                                  std::size_t budget = 0, const LabelFilter& filter = LabelFilter()) const;

  /// Searches `n_queries` row-major queries of `dim` floats in parallel; one list per query.
  std::vector<std::vector<LabeledNeighbor>> search_batch(const float* queries, std::size_t n_queries,
                                                         std::size_t dim, std::size_t k,
                                                         std::size_t budget = 0) const {
    const std::size_t n = size();
    const std::size_t kk = k == 0 ? 0 : (k < n ? k : (n == 0 ? 1 : n));
    if (kk != 0 && n_queries > std::numeric_limits<std::size_t>::max() / kk) {
      throw Error(PANNS_INVALID_ARGUMENT, "n_queries * k overflows");
    }
    std::vector<std::uint64_t> labels(n_queries * kk);
    std::vector<float> ds(n_queries * kk);
    std::uint64_t l_dummy = 0;
    float d_dummy = 0;
    detail::check(panns_sharded_search_batch(ptr_, queries, n_queries, dim, kk, budget,
                                             labels.empty() ? &l_dummy : labels.data(),
                                             ds.empty() ? &d_dummy : ds.data()));
    std::vector<std::vector<LabeledNeighbor>> out(n_queries);
    for (std::size_t q = 0; q < n_queries; q++) {
      for (std::size_t i = 0; i < kk && labels[q * kk + i] != UINT64_MAX; i++) {
        out[q].push_back(LabeledNeighbor{labels[q * kk + i], ds[q * kk + i]});
      }
    }
    return out;
  }

  /// The C handle (still owned by this object).
  const PannsShardedIndex* get() const noexcept { return ptr_; }
  /// True unless moved from.
  explicit operator bool() const noexcept { return ptr_ != nullptr; }

 private:
  PannsShardedIndex* ptr_;
};

/// Collects vectors, then builds an Index. Move-only; not for concurrent use.
class Builder {
 public:
  /// An empty builder for `dim`-dimensional vectors.
  Builder(std::uint32_t dim, Metric metric) : ptr_(nullptr) {
    detail::check(panns_builder_new(dim, static_cast<std::uint32_t>(metric), &ptr_));
  }
  Builder(const Builder&) = delete;
  Builder& operator=(const Builder&) = delete;
  Builder(Builder&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)) {}
  Builder& operator=(Builder&& o) noexcept {
    if (this != &o) {
      panns_builder_free(ptr_);
      ptr_ = std::exchange(o.ptr_, nullptr);
    }
    return *this;
  }
  ~Builder() { panns_builder_free(ptr_); }

  /// Adds one vector of `len` floats; returns its id.
  std::uint32_t add(const float* vec, std::size_t len) {
    std::uint32_t id = 0;
    detail::check(panns_builder_add(ptr_, vec, len, &id));
    return id;
  }
  /// Adds one vector; returns its id.
  std::uint32_t add(const std::vector<float>& vec) { return add(vec.data(), vec.size()); }

  /// Adds `n_rows` row-major vectors of `dim` floats (all or nothing).
  void add_batch(const float* rows, std::size_t n_rows, std::size_t dim) {
    detail::check(panns_builder_add_batch(ptr_, rows, n_rows, dim));
  }
  /// Adds row-major vectors whose dimension is the builder's (all or nothing).
  void add_batch(const std::vector<float>& rows, std::size_t dim) {
    if (dim == 0 || rows.size() % dim != 0) {
      throw Error(PANNS_DIMENSION_MISMATCH, "buffer of " + std::to_string(rows.size()) +
                                                " floats is not a multiple of the dimension " +
                                                std::to_string(dim));
    }
    add_batch(rows.data(), rows.size() / dim, dim);
  }

  /// Adds every vector of a dataset file (format by extension; `dataset` names the HDF5
  /// dataset, empty = "train"); returns how many were added.
  std::size_t add_file(const std::string& path, const std::string& dataset = "") {
    std::size_t added = 0;
    detail::check(panns_builder_add_file(ptr_, path.c_str(),
                                         dataset.empty() ? nullptr : dataset.c_str(), &added));
    return added;
  }

  /// Number of vectors added so far.
  std::size_t size() const noexcept { return panns_builder_len(ptr_); }

  /// Builds the index; the vectors move into it and the builder is left empty (reusable).
  Index build(const BuildOptions& opts = default_build_options()) {
    PannsIndex* p = nullptr;
    detail::check(panns_builder_build(ptr_, &opts, &p));
    return Index(p);
  }

  /// The C handle (still owned by this object).
  PannsBuilder* get() const noexcept { return ptr_; }
  /// True unless moved from.
  explicit operator bool() const noexcept { return ptr_ != nullptr; }

 private:
  PannsBuilder* ptr_;
};


/// One result of a live-index search.
struct LiveNeighbor {
  std::uint64_t label;  ///< The item's label.
  float distance;       ///< Distance to the query under the index metric.
  bool operator==(const LiveNeighbor& o) const noexcept { return label == o.label && distance == o.distance; }
  bool operator!=(const LiveNeighbor& o) const noexcept { return !(*this == o); }
};

/// Live-index search results plus what the search of the base did.
struct LiveSearchResult {
  std::vector<LiveNeighbor> neighbors;  ///< Nearest first, ties by label.
  SearchStats stats;                    ///< Of the base search (all zero without a base).
};

/// A live index (panns_live_*): items added, replaced and removed by 64-bit label while it is
/// searched; a base index file PATH plus an append-only log PATH.log. One writer at a time
/// holds PATH.lock (across processes); readers pick up the writer's commits with refresh().
/// Move-only. The const members (searches, get, contains, accessors) may run on many threads
/// at once; the others (add, remove, commit, compact, refresh) need the object to themselves.
///
///   auto w = panns::LiveIndex::create("items.panns", 3, panns::Metric::Euclidean);
///   w.add({1001}, {1.0f, 2.0f, 3.0f});
///   w.commit();                                         // durable when it returns
///   auto r = panns::LiveIndex::open("items.panns", false);  // a reader, anywhere
///   r.search({1.0f, 2.0f, 3.0f}, 1)[0].label;             // 1001
class LiveIndex {
 public:
  /// Creates an empty live index at `path` and returns its writer. `opts` are used by every
  /// compaction; `graph_degree` > 0 gives each compacted base a neighbour graph. Throws
  /// PANNS_INVALID_ARGUMENT if the files exist, PANNS_LOCKED if another writer holds the lock.
  static LiveIndex create(const std::string& path, std::uint32_t dim, Metric metric,
                          const BuildOptions& opts = default_build_options(), std::uint32_t graph_degree = 0) {
    PannsLive* p = nullptr;
    detail::check(
        panns_live_create(path.c_str(), dim, static_cast<std::uint32_t>(metric), &opts, graph_degree, &p));
    return LiveIndex(p);
  }
  /// Opens the live index at `path` (any index file opens as generation 1, ids as labels):
  /// `writable` takes the writer lock (PANNS_LOCKED if held); a reader sees the last commit
  /// made before it opened, later ones after refresh().
  static LiveIndex open(const std::string& path, bool writable) {
    PannsLive* p = nullptr;
    detail::check(panns_live_open(path.c_str(), writable ? 1u : 0u, &p));
    return LiveIndex(p);
  }
  /// Writes `index` as generation 1 of a new live index at `path` with one distinct label
  /// per item (empty `labels`: the item ids) and returns its writer.
  static LiveIndex from_index(const Index& index, const std::string& path,
                              const std::vector<std::uint64_t>& labels = {}) {
    PannsLive* p = nullptr;
    detail::check(panns_live_from_index(index.get(), path.c_str(), labels.empty() ? nullptr : labels.data(),
                                        labels.size(), &p));
    return LiveIndex(p);
  }

  /// An empty live index held in memory only (no file, log or lock): commit() does nothing,
  /// compact() rebuilds the base in memory, save() writes the contents to a file.
  static LiveIndex in_memory(std::uint32_t dim, Metric metric, const BuildOptions& opts = default_build_options(),
                             std::uint32_t graph_degree = 0) {
    PannsLive* p = nullptr;
    detail::check(panns_live_create(nullptr, dim, static_cast<std::uint32_t>(metric), &opts, graph_degree, &p));
    return LiveIndex(p);
  }
  /// A live index held in memory only over a copy of `index` (generation 1), labels as in
  /// from_index().
  static LiveIndex in_memory(const Index& index, const std::vector<std::uint64_t>& labels = {}) {
    PannsLive* p = nullptr;
    detail::check(panns_live_from_index(index.get(), nullptr, labels.empty() ? nullptr : labels.data(),
                                        labels.size(), &p));
    return LiveIndex(p);
  }

  /// Takes ownership of a handle from the C API (NULL gives an empty object).
  explicit LiveIndex(PannsLive* handle) noexcept : ptr_(handle) {}
  LiveIndex(const LiveIndex&) = delete;
  LiveIndex& operator=(const LiveIndex&) = delete;
  LiveIndex(LiveIndex&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)) {}
  LiveIndex& operator=(LiveIndex&& o) noexcept {
    if (this != &o) {
      panns_live_free(ptr_);
      ptr_ = std::exchange(o.ptr_, nullptr);
    }
    return *this;
  }
  /// Frees the handle: uncommitted changes are discarded, a writer releases its lock.
  ~LiveIndex() { panns_live_free(ptr_); }

  /// Adds `n` items, `labels[i]` with the `dim` floats at `vectors + i * dim`; a held label is
  /// replaced. All or nothing: NaN, a zero vector (angular), a wrong `dim` or a label twice
  /// in the batch throw and apply nothing. Durable after commit().
  void add(const std::uint64_t* labels, const float* vectors, std::size_t n, std::size_t dim) {
    detail::check(panns_live_add(ptr_, labels, vectors, n, dim));
  }
  /// As above, `vectors` holding labels.size() rows of dim() floats.
  void add(const std::vector<std::uint64_t>& labels, const std::vector<float>& vectors) {
    const std::size_t n = labels.size();
    if (n == 0 || vectors.size() % n != 0) {
      if (n == 0 && vectors.empty()) return;
      throw Error(PANNS_DIMENSION_MISMATCH, std::to_string(n) + " labels for " + std::to_string(vectors.size()) +
                                                " floats: not a whole number of floats per label");
    }
    add(labels.data(), vectors.data(), n, vectors.size() / n);
  }
  /// Removes the items of `labels` (labels not held are ignored); returns how many were removed.
  std::size_t remove(const std::vector<std::uint64_t>& labels) {
    std::size_t removed = 0;
    static const std::uint64_t none = 0;
    detail::check(panns_live_remove(ptr_, labels.empty() ? &none : labels.data(), labels.size(), &removed));
    return removed;
  }
  /// Makes every change since the last commit durable (fsynced), then compacts if the delta or
  /// the removals have grown past their thresholds.
  void commit() { detail::check(panns_live_commit(ptr_)); }
  /// Commits, then writes the live items as the next base generation and starts a fresh log.
  void compact() { detail::check(panns_live_compact(ptr_)); }
  /// Writes the live items to `path` as one index file with their labels (atomically);
  /// open() opens it as a live index, Index::open as a plain one. An index in memory is
  /// compacted first if it changed. Throws PANNS_INVALID_ARGUMENT for an index with no items.
  void save(const std::string& path) { detail::check(panns_live_save(ptr_, path.c_str())); }
  /// For a reader: picks up the commits made since it opened or last refreshed; true if
  /// anything changed (a writer is always current: false).
  bool refresh() {
    int changed = 0;
    detail::check(panns_live_refresh(ptr_, &changed));
    return changed != 0;
  }

  /// Approximate k nearest live items, nearest first (ties by label); `budget` as in
  /// Index::search (0 = default).
  std::vector<LiveNeighbor> search(const float* query, std::size_t dim, std::size_t k,
                                   std::size_t budget = 0) const {
    return search_impl(query, dim, k, budget, nullptr);
  }
  /// As above, for a query vector of dim() floats.
  std::vector<LiveNeighbor> search(const std::vector<float>& query, std::size_t k, std::size_t budget = 0) const {
    return search(query.data(), query.size(), k, budget);
  }
  /// search() that also reports what the search of the base did (exact scan or not).
  LiveSearchResult search_with_stats(const std::vector<float>& query, std::size_t k,
                                     std::size_t budget = 0) const {
    PannsSearchStats st{};
    LiveSearchResult r;
    r.neighbors = search_impl(query.data(), query.size(), k, budget, &st);
    r.stats.scored = st.scored;
    r.stats.budget = st.budget;
    r.stats.exact_scan = st.exact_scan != 0;
    return r;
  }
  /// Every live item within `radius` of the query, nearest first, at most `max_results`;
  /// `*truncated` (if given) tells whether the cap cut the list. Candidates are the
  /// max_results + 1 nearest at `budget`: approximate unless the budget covers half the items.
  std::vector<LiveNeighbor> range_search(const std::vector<float>& query, float radius, std::size_t max_results,
                                         std::size_t budget = 0, bool* truncated = nullptr) const {
    const std::size_t n = size();
    const std::size_t room = max_results < n ? max_results : n;
    std::vector<std::uint64_t> labels(room == 0 ? 1 : room);
    std::vector<float> ds(labels.size());
    std::size_t found = 0;
    std::uint8_t cut = 0;
    float q_dummy = 0;
    detail::check(panns_live_range_search(ptr_, query.empty() ? &q_dummy : query.data(), query.size(), radius,
                                          max_results, budget, labels.data(), ds.data(), &found, &cut));
    if (truncated != nullptr) *truncated = cut != 0;
    std::vector<LiveNeighbor> out(found);
    for (std::size_t i = 0; i < found; i++) out[i] = LiveNeighbor{labels[i], ds[i]};
    return out;
  }
  /// Searches row-major queries of dim() floats in parallel; result `i` holds query `i`'s
  /// neighbours (fewer than k when fewer items are live).
  std::vector<std::vector<LiveNeighbor>> search_batch(const std::vector<float>& queries, std::size_t k,
                                                      std::size_t budget = 0) const {
    const std::size_t d = dim();
    if (d == 0 || queries.size() % d != 0) {
      throw Error(d == 0 ? PANNS_NULL_POINTER : PANNS_DIMENSION_MISMATCH,
                  d == 0 ? "the live index is empty (moved from)"
                         : "query buffer of " + std::to_string(queries.size()) +
                               " floats is not a multiple of the dimension " + std::to_string(d));
    }
    const std::size_t nq = queries.size() / d, n = size();
    const std::size_t kk = k == 0 ? 0 : (k < n ? k : (n == 0 ? 1 : n));
    if (kk != 0 && nq > std::numeric_limits<std::size_t>::max() / kk) {
      throw Error(PANNS_INVALID_ARGUMENT, "n_queries * k overflows");
    }
    std::vector<std::uint64_t> labels(nq * kk);
    std::vector<float> ds(nq * kk);
    std::uint64_t l_dummy = 0;
    float d_dummy = 0, q_dummy = 0;
    detail::check(panns_live_search_batch(ptr_, queries.empty() ? &q_dummy : queries.data(), nq, d, kk, budget,
                                          labels.empty() ? &l_dummy : labels.data(),
                                          ds.empty() ? &d_dummy : ds.data()));
    std::vector<std::vector<LiveNeighbor>> out(nq);
    for (std::size_t q = 0; q < nq; q++) {
      for (std::size_t i = 0; i < kk && labels[q * kk + i] != UINT64_MAX; i++) {
        out[q].push_back(LiveNeighbor{labels[q * kk + i], ds[q * kk + i]});
      }
    }
    return out;
  }

  /// search() restricted to the live items whose label `filter` allows: the k nearest
  /// allowed items, nearest first (ties by label); fewer when fewer are allowed (none for an
  /// empty allow-list), or when they are too sparse for the budget to reach (an allow-list
  /// is planned, an exact scan of its items when few are listed; a deny-list or allow_if
  /// walks the base with the filter: raise the budget for a selective predicate). An
  /// exception of an allow_if predicate is rethrown.
  std::vector<LiveNeighbor> search_filtered(const float* query, std::size_t dim, std::size_t k, std::size_t budget,
                                            const LabelFilter& filter) const {
    LabelFilter::Call call(filter);
    const std::size_t n = size();
    const std::size_t room = k < n ? k : n;
    std::vector<std::uint64_t> labels(room == 0 ? 1 : room);
    std::vector<float> ds(labels.size());
    std::size_t found = 0;
    call.check(
        panns_live_search_filtered(ptr_, query, dim, k, budget, call.get(), labels.data(), ds.data(), &found));
    std::vector<LiveNeighbor> out(found);
    for (std::size_t i = 0; i < found; i++) out[i] = LiveNeighbor{labels[i], ds[i]};
    return out;
  }
  /// As above, for a query vector of dim() floats.
  std::vector<LiveNeighbor> search_filtered(const std::vector<float>& query, std::size_t k, std::size_t budget,
                                            const LabelFilter& filter) const {
    return search_filtered(query.data(), query.size(), k, budget, filter);
  }
  /// The k nearest live items among the listed labels.
  std::vector<LiveNeighbor> search_filtered(const std::vector<float>& query, std::size_t k, std::size_t budget,
                                            const std::vector<std::uint64_t>& labels) const {
    return search_filtered(query, k, budget, LabelFilter::allow_labels(labels));
  }
  /// The k nearest live items whose label satisfies pred (its exceptions are rethrown).
  std::vector<LiveNeighbor> search_filtered(const std::vector<float>& query, std::size_t k, std::size_t budget,
                                            std::function<bool(std::uint64_t)> pred) const {
    return search_filtered(query, k, budget, LabelFilter::allow_if(std::move(pred)));
  }
  /// search_batch() restricted to the labels `filter` allows (one filter for all queries;
  /// an allow_if predicate is called from several threads at once). Result `i` holds query
  /// `i`'s neighbours, as many as were found.
  std::vector<std::vector<LiveNeighbor>> search_batch_filtered(const std::vector<float>& queries, std::size_t k,
                                                               std::size_t budget, const LabelFilter& filter) const {
    const std::size_t d = dim();
    LabelFilter::Call call(filter);
    return detail::labeled_batch<LiveNeighbor>(
        queries, d, size(), k, "live index",
        [&](const float* qs, std::size_t nq, std::size_t kk, std::uint64_t* labels, float* ds, std::size_t* counts) {
          call.check(panns_live_search_batch_filtered(ptr_, qs, nq, d, kk, budget, call.get(), labels, ds, counts));
        });
  }

  /// True if `label` is held.
  bool contains(std::uint64_t label) const noexcept { return panns_live_contains(ptr_, label) != 0; }
  /// The stored vector of `label` (unit length under the angular metric); throws
  /// PANNS_OUT_OF_RANGE if the label is not held.
  std::vector<float> get(std::uint64_t label) const {
    std::vector<float> v(dim());
    float dummy = 0;
    detail::check(panns_live_get(ptr_, label, v.empty() ? &dummy : v.data(), v.size()));
    return v;
  }

  /// Live items (0 for a moved-from object).
  std::size_t size() const noexcept { return panns_live_len(ptr_); }
  /// Vector dimension.
  std::uint32_t dim() const noexcept { return panns_live_dim(ptr_); }
  /// Distance metric.
  Metric metric() const noexcept { return static_cast<Metric>(panns_live_metric(ptr_)); }
  /// Base generation (0 before the first compaction).
  std::uint64_t generation() const noexcept { return panns_live_generation(ptr_); }
  /// Items in the base file, removed ones included.
  std::size_t base_size() const noexcept { return panns_live_base_len(ptr_); }
  /// Live items added since the base was written.
  std::size_t delta_size() const noexcept { return panns_live_delta_len(ptr_); }
  /// Base items removed or replaced since the base was written.
  std::size_t tombstones() const noexcept { return panns_live_tombstones(ptr_); }
  /// Uncommitted changes of this handle.
  std::size_t pending() const noexcept { return panns_live_pending(ptr_); }
  /// True if this handle takes changes (the writer, or an index in memory).
  bool writable() const noexcept { return panns_live_is_writable(ptr_) != 0; }
  /// True for an index held in memory only.
  bool is_in_memory() const noexcept { return panns_live_is_in_memory(ptr_) != 0; }

  /// The C handle (still owned by this object).
  PannsLive* get_handle() const noexcept { return ptr_; }
  /// True unless moved from.
  explicit operator bool() const noexcept { return ptr_ != nullptr; }

 private:
  std::vector<LiveNeighbor> search_impl(const float* query, std::size_t dim, std::size_t k, std::size_t budget,
                                        PannsSearchStats* stats) const {
    const std::size_t n = size();
    const std::size_t room = k < n ? k : n;
    std::vector<std::uint64_t> labels(room == 0 ? 1 : room);
    std::vector<float> ds(labels.size());
    std::size_t found = 0;
    detail::check(stats != nullptr
                      ? panns_live_search_with_stats(ptr_, query, dim, k, budget, labels.data(), ds.data(), &found,
                                                     stats)
                      : panns_live_search(ptr_, query, dim, k, budget, labels.data(), ds.data(), &found));
    std::vector<LiveNeighbor> out(found);
    for (std::size_t i = 0; i < found; i++) out[i] = LiveNeighbor{labels[i], ds[i]};
    return out;
  }

  PannsLive* ptr_;
};

inline std::vector<LabeledNeighbor> ShardedIndex::search_filtered(const float* query, std::size_t dim,
                                                                  std::size_t k, std::size_t budget,
                                                                  const LabelFilter& filter) const {
  LabelFilter::Call call(filter);
  const std::size_t room = k < size() ? k : size();
  std::vector<std::uint64_t> labels(room == 0 ? 1 : room);
  std::vector<float> ds(labels.size());
  std::size_t n = 0;
  call.check(panns_sharded_search_filtered(ptr_, query, dim, k, budget, call.get(), labels.data(), ds.data(), &n));
  std::vector<LabeledNeighbor> out(n);
  for (std::size_t i = 0; i < n; i++) out[i] = LabeledNeighbor{labels[i], ds[i]};
  return out;
}

inline std::vector<std::vector<LabeledNeighbor>> ShardedIndex::search_batch_filtered(const std::vector<float>& queries,
                                                                                    std::size_t k, std::size_t budget,
                                                                                    const LabelFilter& filter) const {
  const std::size_t d = dim();
  LabelFilter::Call call(filter);
  return detail::labeled_batch<LabeledNeighbor>(
      queries, d, size(), k, "sharded index",
      [&](const float* qs, std::size_t nq, std::size_t kk, std::uint64_t* labels, float* ds, std::size_t* counts) {
        call.check(panns_sharded_search_batch_filtered(ptr_, qs, nq, d, kk, budget, call.get(), labels, ds, counts));
      });
}

inline LabeledRangeResult ShardedIndex::range_search(const std::vector<float>& query, float radius,
                                                     std::size_t max_results, std::size_t budget,
                                                     const LabelFilter& filter) const {
  LabelFilter::Call call(filter);
  // At most size() items can be within the radius: a huge max_results costs no memory.
  const std::size_t n = size();
  const std::size_t room = max_results < n ? max_results : n;
  std::vector<std::uint64_t> labels(room == 0 ? 1 : room);
  std::vector<float> ds(labels.size());
  std::size_t found = 0;
  std::uint8_t cut = 0;
  const float q_dummy = 0;
  call.check(panns_sharded_range_search(ptr_, query.empty() ? &q_dummy : query.data(), query.size(), radius,
                                        max_results, budget, call.get(), labels.data(), ds.data(), &found, &cut));
  LabeledRangeResult r;
  r.truncated = cut != 0;
  r.neighbors.resize(found);
  for (std::size_t i = 0; i < found; i++) r.neighbors[i] = LabeledNeighbor{labels[i], ds[i]};
  return r;
}

}  // namespace panns

#endif  // PANNS_HPP
