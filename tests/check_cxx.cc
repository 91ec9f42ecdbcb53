// SPDX-License-Identifier: MIT
//
// check_cxx.cc - include/fancyalloc.hpp (issue 9): the design document's
// Quick Start in C++, fancy::stl_allocator with std::vector,
// std::unordered_map and std::basic_string, an over-aligned element type,
// containers used from several threads, the propagation traits, and the
// move semantics of fancy::PerThreadAllocator.
//
// Built by `make check` when $(CXX) compiles C++17 (tests/instances.mk);
// exit status 0 pass, 1 fail (one "FAIL: ..." line per failed check on
// stderr), as automake's test harness expects.

#include <fancyalloc.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

int failures = 0;

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::fprintf(stderr, "FAIL: %s:%d: %s\n", __FILE__, __LINE__, #cond);  \
      failures++;                                                            \
    }                                                                        \
  } while (0)

bool aligned(const void *p, std::size_t a) {
  return (reinterpret_cast<std::uintptr_t>(p) & (a - 1)) == 0;
}

// Is p a block of the instance a?  Only a block of a has a usable size >= 1
// through a, and asking is harmless (no free); blocks of other instances
// are not asked about here, since that may abort.
bool live_in(fancy_allocator_t *a, const void *p) {
  return fancy_allocator_usable_size(a, p) > 0;
}

// ------------------------------------------------------------------------
// The document's Quick Start, with fancy::PerThreadAllocator.
// ------------------------------------------------------------------------
void test_quick_start() {
  // Create allocator: 64MB per thread, reclamation enabled
  fancy::PerThreadAllocator alloc(64 * 1024 * 1024, true);

  // Allocate
  void *ptr = alloc.allocate(1024);
  CHECK(ptr != nullptr);
  CHECK(aligned(ptr, 16));
  CHECK(alloc.usableSize(ptr) >= 1024);

  // Aligned allocation (for SIMD: 16/32/64-byte); (size, alignment)
  void *al = alloc.allocateAligned(1024, 64);
  CHECK(al != nullptr);
  CHECK(aligned(al, 64));
  CHECK(alloc.usableSize(al) >= 1024);

  std::memset(ptr, 1, 1024);
  std::memset(al, 2, 1024);
  CHECK(alloc.validate());

  // Deallocate
  alloc.deallocate(ptr);
  alloc.deallocate(al);
  alloc.deallocate(nullptr);

  // A bad alignment is an error, not an exception.
  CHECK(alloc.allocateAligned(64, 48) == nullptr);

  // stats() and checkLeaks() cover this instance only.
  std::FILE *f = std::tmpfile();
  CHECK(f != nullptr);
  if (f != nullptr) {
    alloc.stats(f);
    CHECK(std::ftell(f) > 0);
    std::fclose(f);
  }
  CHECK(!alloc.checkLeaks());
  CHECK(alloc.validate());
}

void test_default_constructor() {
  fancy::PerThreadAllocator a;  // 64 MiB arenas, process reclamation setting
  CHECK(a.get() != nullptr);
  CHECK(a.get() != fancy_allocator_default());
  void *p = a.allocate(10);
  CHECK(p != nullptr);
  a.deallocate(p);
  fancy_allocator_config_t c{};
  c.memory_limit = std::size_t{16} << 20;
  fancy::PerThreadAllocator limited(c);
  CHECK(limited.allocate(std::size_t{64} << 20) == nullptr);
  void *q = limited.allocate(1000);
  CHECK(q != nullptr);
  limited.deallocate(q);
}

// ------------------------------------------------------------------------
// PerThreadAllocator: non-copyable, movable.
// ------------------------------------------------------------------------
static_assert(!std::is_copy_constructible_v<fancy::PerThreadAllocator>);
static_assert(!std::is_copy_assignable_v<fancy::PerThreadAllocator>);
static_assert(std::is_nothrow_move_constructible_v<fancy::PerThreadAllocator>);
static_assert(std::is_nothrow_move_assignable_v<fancy::PerThreadAllocator>);

fancy::PerThreadAllocator make_allocator() {
  fancy::PerThreadAllocator a(std::size_t{8} << 20);
  return a;
}

void test_move() {
  fancy::PerThreadAllocator a = make_allocator();
  fancy_allocator_t *h = a.get();
  CHECK(h != nullptr);
  void *p = a.allocate(100);
  CHECK(p != nullptr);
  std::memset(p, 3, 100);

  fancy::PerThreadAllocator b(std::move(a));
  CHECK(a.get() == nullptr);
  CHECK(b.get() == h);
  CHECK(live_in(b.get(), p));
  b.deallocate(p);  // the block moved with its instance

  fancy::PerThreadAllocator c;
  fancy_allocator_t *hc = c.get();
  CHECK(hc != h);
  void *q = c.allocate(200);
  CHECK(q != nullptr);
  c = std::move(b);  // destroys c's instance, with q in it
  CHECK(c.get() == h);
  CHECK(b.get() == nullptr);
  void *r = c.allocate(300);
  CHECK(r != nullptr);
  c.deallocate(r);
  CHECK(c.validate());

  // Moved-from objects may be assigned to again and destroyed.
  a = fancy::PerThreadAllocator(std::size_t{1} << 20);
  CHECK(a.get() != nullptr);
  CHECK(a.get() != c.get());
  std::swap(a, c);
  CHECK(a.get() == h);
}

// Creating more instances than the process allows throws std::bad_alloc.
void test_constructor_throws() {
  std::vector<fancy::PerThreadAllocator> all;
  bool thrown = false;
  for (int i = 0; i < 1000 && !thrown; i++) {
    try {
      all.emplace_back(std::size_t{1} << 20);
    } catch (const std::bad_alloc &) {
      thrown = true;
    }
  }
  CHECK(thrown);
  CHECK(!all.empty());
  all.clear();
  fancy::PerThreadAllocator again;  // room again
  CHECK(again.get() != nullptr);
}

// ------------------------------------------------------------------------
// stl_allocator
// ------------------------------------------------------------------------
using traits = std::allocator_traits<fancy::stl_allocator<int>>;
static_assert(std::is_same_v<traits::value_type, int>);
static_assert(std::is_same_v<traits::rebind_alloc<double>,
                             fancy::stl_allocator<double>>);
static_assert(!traits::is_always_equal::value);
static_assert(traits::propagate_on_container_move_assignment::value);
static_assert(traits::propagate_on_container_swap::value);
static_assert(!traits::propagate_on_container_copy_assignment::value);

template <class T>
using fvector = std::vector<T, fancy::stl_allocator<T>>;
using fstring =
    std::basic_string<char, std::char_traits<char>, fancy::stl_allocator<char>>;
template <class K, class V, class H = std::hash<K>>
using fmap = std::unordered_map<K, V, H, std::equal_to<K>,
                                fancy::stl_allocator<std::pair<const K, V>>>;

// std::hash of a basic_string with another allocator is C++20; hash the
// characters as a string_view.
struct fstring_hash {
  std::size_t operator()(const fstring &s) const noexcept {
    return std::hash<std::string_view>()(std::string_view(s.data(), s.size()));
  }
};

void test_allocator_basics() {
  fancy::PerThreadAllocator inst;
  fancy::stl_allocator<int> def;  // default instance
  fancy::stl_allocator<int> mine(inst);
  fancy::stl_allocator<int> raw(inst.get());
  fancy::stl_allocator<int> null_handle(nullptr);
  CHECK(def.get() == fancy_allocator_default());
  CHECK(null_handle == def);
  CHECK(mine == raw);
  CHECK(mine != def);
  fancy::stl_allocator<double> rebound(mine);  // rebind keeps the instance
  CHECK(rebound == mine);
  CHECK(rebound.get() == inst.get());

  int *p = mine.allocate(1000);
  CHECK(p != nullptr);
  CHECK(live_in(inst.get(), p));
  CHECK(fancy_allocator_usable_size(inst.get(), p) >= 1000 * sizeof(int));
  mine.deallocate(p, 1000);

  bool thrown = false;
  try {
    (void)mine.allocate(std::numeric_limits<std::size_t>::max() / 2);
  } catch (const std::bad_array_new_length &) {
    thrown = true;
  }
  CHECK(thrown);

  thrown = false;
  fancy::stl_allocator<char> bytes(inst);
  try {
    // fits size_t but cannot be mapped (volatile: hide the constant from
    // -Walloc-size-larger-than)
    volatile std::size_t huge = std::numeric_limits<std::size_t>::max() - 4096;
    (void)bytes.allocate(huge);
  } catch (const std::bad_array_new_length &) {
    CHECK(!"bad_array_new_length for a size that does not overflow");
  } catch (const std::bad_alloc &) {
    thrown = true;
  }
  CHECK(thrown);
}

void test_vector() {
  fancy::PerThreadAllocator inst;
  {
    fvector<int> v{fancy::stl_allocator<int>(inst)};
    for (int i = 0; i < 100000; i++) v.push_back(i);
    CHECK(v.size() == 100000);
    CHECK(live_in(inst.get(), v.data()));
    long long sum = 0;
    for (int x : v) sum += x;
    CHECK(sum == 100000LL * 99999 / 2);
    v.resize(10);
    v.shrink_to_fit();
    CHECK(v.size() == 10 && v[9] == 9);

    fvector<int> copy(v);  // copy construction: same instance
    CHECK(copy.get_allocator() == v.get_allocator());
    CHECK(copy == v);

    fvector<int> other;  // default instance
    other.assign(5, 7);
    other = v;  // copy assignment does not propagate
    CHECK(other.get_allocator().get() == fancy_allocator_default());
    CHECK(other == v);

    fvector<int> moved;
    moved = std::move(copy);  // move assignment propagates
    CHECK(moved.get_allocator().get() == inst.get());
    CHECK(live_in(inst.get(), moved.data()));

    fvector<int> s1(3, 1);  // default instance
    fvector<int> s2(4, 2, fancy::stl_allocator<int>(inst));
    s1.swap(s2);  // swap propagates
    CHECK(s1.get_allocator().get() == inst.get());
    CHECK(s2.get_allocator().get() == fancy_allocator_default());
    CHECK(s1.size() == 4 && s2.size() == 3);
  }
  CHECK(!inst.checkLeaks());
  CHECK(inst.validate());
}

void test_unordered_map() {
  fancy::PerThreadAllocator inst;
  {
    fmap<int, std::string> m{16, std::hash<int>(), std::equal_to<int>(),
                             fancy::stl_allocator<std::pair<const int,
                                                            std::string>>(inst)};
    for (int i = 0; i < 20000; i++) m.emplace(i, std::to_string(i));
    for (int i = 0; i < 20000; i += 3) m.erase(i);
    CHECK(m.size() == 20000 - 6667);
    CHECK(m.at(20000 - 1) == std::to_string(20000 - 1));
    CHECK(m.find(3) == m.end());
    CHECK(m.get_allocator().get() == inst.get());

    fmap<fstring, fvector<int>, fstring_hash> nested;  // everything in the default instance
    for (int i = 0; i < 1000; i++)
      nested[fstring("key number ") + fstring(std::to_string(i).c_str())]
          .assign(static_cast<std::size_t>(i % 17), i);
    CHECK(nested.size() == 1000);
    CHECK(nested[fstring("key number 999")].size() == 999 % 17);
  }
  CHECK(!inst.checkLeaks());
  CHECK(inst.validate());
}

void test_string() {
  fancy::PerThreadAllocator inst;
  {
    fancy::stl_allocator<char> a(inst);
    fstring s("short", a);
    CHECK(s == "short");
    fstring longer(a);
    for (int i = 0; i < 1000; i++) longer += "0123456789";
    CHECK(longer.size() == 10000);
    CHECK(live_in(inst.get(), longer.data()));
    fstring copy = longer.substr(5000, 10);
    CHECK(copy == "0123456789");
    longer.replace(0, 10, "abcdefghij");
    CHECK(longer.compare(0, 10, "abcdefghij") == 0);
    CHECK(longer.get_allocator() == a);

    using wfstring = std::basic_string<wchar_t, std::char_traits<wchar_t>,
                                       fancy::stl_allocator<wchar_t>>;
    wfstring w(2000, L'x', fancy::stl_allocator<wchar_t>(inst));
    CHECK(w.size() == 2000 && w[1999] == L'x');
  }
  CHECK(!inst.checkLeaks());
}

// Over-aligned elements: stl_allocator uses fancy_allocator_aligned_alloc.
struct alignas(64) CacheLine {
  std::uint64_t value;
  char pad[40];
};
static_assert(alignof(CacheLine) == 64);

struct alignas(256) Page256 {
  char bytes[256];
};

void test_overaligned() {
  fancy::PerThreadAllocator inst;
  {
    fvector<CacheLine> v{fancy::stl_allocator<CacheLine>(inst)};
    for (int round = 0; round < 200; round++) {
      v.push_back(CacheLine{static_cast<std::uint64_t>(round), {}});
      CHECK(aligned(v.data(), 64));
      CHECK(aligned(&v.back(), 64));
    }
    for (int i = 0; i < 200; i++) CHECK(v[static_cast<std::size_t>(i)].value ==
                                        static_cast<std::uint64_t>(i));
    fvector<CacheLine> d(37);  // default instance
    CHECK(aligned(d.data(), 64));
    fvector<Page256> pages(5, Page256{}, fancy::stl_allocator<Page256>(inst));
    CHECK(aligned(pages.data(), 256));
  }
  CHECK(!inst.checkLeaks());
  CHECK(inst.validate());
}

// Containers of one instance built, passed and destroyed across threads.
void test_threads() {
  fancy::PerThreadAllocator inst;
  constexpr int kThreads = 8;
  std::atomic<int> bad{0};
  std::vector<fvector<fstring>> results(kThreads);
  {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
      threads.emplace_back([&, t] {
        fancy::stl_allocator<char> ca(inst);
        fvector<fstring> v{fancy::stl_allocator<fstring>(inst)};
        for (int i = 0; i < 20000; i++) {
          fstring s(ca);
          s.assign(static_cast<std::size_t>(16 + (i * 7 + t) % 300),
                   static_cast<char>('a' + t));
          v.push_back(std::move(s));
          if (i % 5 == 0) v.erase(v.begin() + (i % static_cast<int>(v.size())));
        }
        fmap<int, int> m{8, std::hash<int>(), std::equal_to<int>(),
                         fancy::stl_allocator<std::pair<const int, int>>(inst)};
        for (int i = 0; i < 5000; i++) m[i] = i * t;
        for (int i = 0; i < 5000; i++)
          if (m[i] != i * t) bad++;
        for (const fstring &s : v)
          if (s.empty() || s[0] != static_cast<char>('a' + t)) bad++;
        results[static_cast<std::size_t>(t)] = std::move(v);
      });
    }
    for (std::thread &th : threads) th.join();
  }
  CHECK(bad.load() == 0);
  CHECK(inst.validate());
  // The other threads' blocks are freed by this one.
  {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++)
      threads.emplace_back([&, t] {
        // thread t frees what thread (t + 1) % kThreads built
        results[static_cast<std::size_t>((t + 1) % kThreads)].clear();
        results[static_cast<std::size_t>((t + 1) % kThreads)].shrink_to_fit();
      });
    for (std::thread &th : threads) th.join();
  }
  results.clear();
  CHECK(!inst.checkLeaks());
  CHECK(inst.validate());
}

}  // namespace

int main() {
  test_quick_start();
  test_default_constructor();
  test_move();
  test_constructor_throws();
  test_allocator_basics();
  test_vector();
  test_unordered_map();
  test_string();
  test_overaligned();
  test_threads();
  CHECK(fancy_allocator_validate(fancy_allocator_default()));
  if (failures != 0) {
    std::fprintf(stderr, "check_cxx: %d check(s) failed\n", failures);
    return 1;
  }
  std::printf("check_cxx: PASS\n");
  return 0;
}
