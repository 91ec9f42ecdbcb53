// SPDX-License-Identifier: MIT
//
// cxx_new - C++'s replaceable operator new and operator delete under
// libfancymalloc (lib/override_cxx.c): every form allocates and frees,
// the aligned forms align, and a failed allocation behaves as libstdc++'s
// own: the new-handler is called until it gives up, std::bad_alloc is
// thrown, an exception the handler throws reaches the caller, and the
// nothrow forms return NULL.  Prints the same under glibc (the test
// compares).  "cxx_new --which" prints, for each of the 20 operators, the
// library its address resolves to.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <new>

#include <dlfcn.h>

namespace {

// Larger than any allocator can give (but not above PTRDIFF_MAX, which
// some operator new forms reject before asking): every allocator fails it.
const std::size_t kHuge = static_cast<std::size_t>(PTRDIFF_MAX) - 4096;

volatile std::size_t huge_size = kHuge;   // keeps the compiler from folding
void *volatile sink;                      // and from eliding new/delete pairs

const char *lib_of(const void *fn) {
  Dl_info info;
  if (dladdr(fn, &info) == 0 || info.dli_fname == nullptr) return "unknown";
  if (std::strstr(info.dli_fname, "libfancymalloc")) return "libfancymalloc";
  if (std::strstr(info.dli_fname, "libstdc++")) return "libstdc++";
  return info.dli_fname;
}

template <class F>
void which(const char *name, F fn) {
  std::printf("%s %s\n", name, lib_of(reinterpret_cast<const void *>(fn)));
}

int print_which() {
  using std::align_val_t;
  using std::nothrow_t;
  using std::size_t;
  which("new", static_cast<void *(*)(size_t)>(&::operator new));
  which("new[]", static_cast<void *(*)(size_t)>(&::operator new[]));
  which("new-nothrow", static_cast<void *(*)(size_t, const nothrow_t &) noexcept>(&::operator new));
  which("new[]-nothrow", static_cast<void *(*)(size_t, const nothrow_t &) noexcept>(&::operator new[]));
  which("new-aligned", static_cast<void *(*)(size_t, align_val_t)>(&::operator new));
  which("new[]-aligned", static_cast<void *(*)(size_t, align_val_t)>(&::operator new[]));
  which("new-aligned-nothrow",
        static_cast<void *(*)(size_t, align_val_t, const nothrow_t &) noexcept>(&::operator new));
  which("new[]-aligned-nothrow",
        static_cast<void *(*)(size_t, align_val_t, const nothrow_t &) noexcept>(&::operator new[]));
  which("delete", static_cast<void (*)(void *) noexcept>(&::operator delete));
  which("delete[]", static_cast<void (*)(void *) noexcept>(&::operator delete[]));
  which("delete-sized", static_cast<void (*)(void *, size_t) noexcept>(&::operator delete));
  which("delete[]-sized", static_cast<void (*)(void *, size_t) noexcept>(&::operator delete[]));
  which("delete-nothrow", static_cast<void (*)(void *, const nothrow_t &) noexcept>(&::operator delete));
  which("delete[]-nothrow",
        static_cast<void (*)(void *, const nothrow_t &) noexcept>(&::operator delete[]));
  which("delete-aligned", static_cast<void (*)(void *, align_val_t) noexcept>(&::operator delete));
  which("delete[]-aligned", static_cast<void (*)(void *, align_val_t) noexcept>(&::operator delete[]));
  which("delete-sized-aligned",
        static_cast<void (*)(void *, size_t, align_val_t) noexcept>(&::operator delete));
  which("delete[]-sized-aligned",
        static_cast<void (*)(void *, size_t, align_val_t) noexcept>(&::operator delete[]));
  which("delete-aligned-nothrow",
        static_cast<void (*)(void *, align_val_t, const nothrow_t &) noexcept>(&::operator delete));
  which("delete[]-aligned-nothrow",
        static_cast<void (*)(void *, align_val_t, const nothrow_t &) noexcept>(&::operator delete[]));
  return 0;
}

int failures = 0;
void check(bool ok, const char *what) {
  std::printf("%s: %s\n", what, ok ? "ok" : "FAILED");
  if (!ok) failures++;
}

bool aligned(const void *p, std::size_t a) { return (reinterpret_cast<std::uintptr_t>(p) & (a - 1)) == 0; }

// Writes every byte, so that a block too small for its size shows (a
// crash here, or a sanitizer's report).
void fill(void *p, std::size_t n) { std::memset(p, 0x5a, n); }

struct Counted {
  static int live;
  char payload[40];
  Counted() { live++; }
  ~Counted() { live--; }
};
int Counted::live = 0;

struct alignas(256) Wide {
  char payload[300];
};

int handler_calls = 0;
int handler_limit = 0;
void counting_handler() {
  if (++handler_calls >= handler_limit) std::set_new_handler(nullptr);
}

struct FromHandler {
  int code;
};
void throwing_handler() { throw FromHandler{7}; }

void plain_forms() {
  // every size up to a few pages, through each plain form
  bool ok = true;
  for (std::size_t n = 0; n <= 20000; n += (n < 512 ? 1 : 97)) {
    void *a = ::operator new(n);
    void *b = ::operator new[](n);
    void *c = ::operator new(n, std::nothrow);
    void *d = ::operator new[](n, std::nothrow);
    ok = ok && a && b && c && d && a != b && aligned(a, 16) && aligned(b, 16) && aligned(c, 16) &&
         aligned(d, 16);
    fill(a, n);
    fill(b, n);
    fill(c, n);
    fill(d, n);
    ::operator delete(a, n);     // sized
    ::operator delete[](b, n);   // sized
    ::operator delete(c, std::nothrow);
    ::operator delete[](d, std::nothrow);
  }
  check(ok, "new, new[] and their nothrow forms, 0-20000 bytes, 16-aligned, sized delete");

  void *z1 = ::operator new(0), *z2 = ::operator new(0);
  check(z1 != nullptr && z2 != nullptr && z1 != z2, "new(0) returns distinct non-null pointers");
  ::operator delete(z1);
  ::operator delete(z2);

  Counted *arr = new Counted[37];   // array cookie and sized delete[]
  check(Counted::live == 37, "new[] of a class constructs each element");
  delete[] arr;
  check(Counted::live == 0, "delete[] destroys each element");

  int *one = new int(42);
  sink = one;
  check(*one == 42, "new int(42)");
  delete one;
}

void aligned_forms() {
  bool ok = true;
  for (std::size_t a = 16; a <= (std::size_t)1 << 21; a <<= 1) {
    for (std::size_t n : {(std::size_t)1, a - 1, a, a + 1, (std::size_t)3 * a + 5}) {
      std::align_val_t al{a};
      void *p = ::operator new(n, al);
      void *q = ::operator new[](n, al);
      void *r = ::operator new(n, al, std::nothrow);
      void *s = ::operator new[](n, al, std::nothrow);
      ok = ok && p && q && r && s && aligned(p, a) && aligned(q, a) && aligned(r, a) && aligned(s, a);
      fill(p, n);
      fill(q, n);
      fill(r, n);
      fill(s, n);
      ::operator delete(p, n, al);
      ::operator delete[](q, al);
      ::operator delete(r, al, std::nothrow);
      ::operator delete[](s, n, al);
    }
  }
  check(ok, "aligned new and new[] (and nothrow), alignments 16 B to 2 MiB");

  Wide *w = new Wide[5];
  check(aligned(w, 256), "new[] of an alignas(256) type");
  delete[] w;
  Wide *v = new Wide;
  check(aligned(v, 256), "new of an alignas(256) type");
  delete v;
}

void failures_of_new() {
  std::size_t n = huge_size;
  check(::operator new(n, std::nothrow) == nullptr, "nothrow new of a huge size returns NULL");
  check(::operator new[](n, std::nothrow) == nullptr, "nothrow new[] of a huge size returns NULL");
  check(::operator new(n, std::align_val_t{64}, std::nothrow) == nullptr,
        "aligned nothrow new of a huge size returns NULL");
  check(::operator new[](n, std::align_val_t{64}, std::nothrow) == nullptr,
        "aligned nothrow new[] of a huge size returns NULL");

  const char *caught = "nothing";
  try {
    sink = ::operator new(n);
  } catch (const std::bad_alloc &) {
    caught = "std::bad_alloc";
  }
  std::printf("new of a huge size throws %s\n", caught);
  caught = "nothing";
  try {
    sink = new char[n];
  } catch (const std::bad_alloc &) {
    caught = "std::bad_alloc";
  }
  std::printf("new char[huge] throws %s\n", caught);
  caught = "nothing";
  try {
    sink = ::operator new(n, std::align_val_t{4096});
  } catch (const std::bad_alloc &) {
    caught = "std::bad_alloc";
  }
  std::printf("aligned new of a huge size throws %s\n", caught);

  // The new-handler runs until it removes itself, then bad_alloc.
  handler_calls = 0;
  handler_limit = 3;
  std::set_new_handler(counting_handler);
  caught = "nothing";
  try {
    sink = ::operator new(n);
  } catch (const std::bad_alloc &) {
    caught = "std::bad_alloc";
  }
  std::printf("with a new-handler: %d calls, then %s\n", handler_calls, caught);

  // The nothrow form calls it too, then returns NULL.
  handler_calls = 0;
  handler_limit = 2;
  std::set_new_handler(counting_handler);
  void *p = ::operator new[](n, std::nothrow);
  std::printf("nothrow new[] with a new-handler: %d calls, then %s\n", handler_calls,
              p == nullptr ? "NULL" : "a block");

  // An exception the handler throws reaches the caller.
  std::set_new_handler(throwing_handler);
  int code = 0;
  try {
    sink = new char[n];
  } catch (const FromHandler &e) {
    code = e.code;
  }
  std::set_new_handler(nullptr);
  std::printf("the new-handler's own exception reaches the caller: code %d\n", code);
}

}  // namespace

int main(int argc, char **argv) {
  if (argc > 1 && std::strcmp(argv[1], "--which") == 0) return print_which();
  plain_forms();
  aligned_forms();
  failures_of_new();
  return failures == 0 ? 0 : 1;
}
