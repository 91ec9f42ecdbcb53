/* SPDX-License-Identifier: MIT */
/*
 * fancyalloc.hpp - header-only C++17 wrappers of the allocator instances of
 * <fancyalloc.h> (see fancy_allocator_create(3)).
 *
 *   fancy::PerThreadAllocator  owns one instance: the design document's
 *                              FancyPerThreadAllocator (allocate,
 *                              allocateAligned, deallocate).
 *   fancy::stl_allocator<T>    a standard allocator over an instance, for
 *                              std::vector, std::unordered_map,
 *                              std::basic_string and the other containers.
 *
 * Link with `pkg-config --libs fancyalloc`, as for the C API.
 *
 * Lifetime: fancy_allocator_destroy() - run by ~PerThreadAllocator() -
 * releases every block of the instance at once.  A container that uses an
 * stl_allocator over an instance must therefore be destroyed (or cleared
 * and shrunk) before the PerThreadAllocator that owns the instance.
 */
#ifndef FANCYALLOC_HPP
#define FANCYALLOC_HPP

#if !defined(__cplusplus) || __cplusplus < 201703L
#  error "fancyalloc.hpp needs C++17 or later (-std=c++17); C programs include <fancyalloc.h>"
#else

#include <cstddef>
#include <cstdio>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>

#include <fancyalloc.h>

namespace fancy {

/* ------------------------------------------------------------------------
 * PerThreadAllocator: one allocator instance, owned (RAII).
 * ---------------------------------------------------------------------- */
class PerThreadAllocator {
public:
  /* A new instance whose threads each keep an arena of arenaSize bytes
   * (0: the default, 64 MiB).  enableReclamation = true turns the
   * background reclamation on for the instance; false leaves the process
   * setting (FANCY_RECLAIM, off unless configured otherwise) in force.
   * Throws std::bad_alloc when the instance cannot be created (no memory,
   * or the process already has the maximum number of instances). */
  explicit PerThreadAllocator(std::size_t arenaSize = std::size_t{64} << 20,
                              bool enableReclamation = false)
      : PerThreadAllocator(make_config(arenaSize, enableReclamation)) {}

  /* Every field of fancy_allocator_config_t; see fancy_allocator_create(3). */
  explicit PerThreadAllocator(const fancy_allocator_config_t &config)
      : handle_(fancy_allocator_create(&config)) {
    if (handle_ == nullptr) throw std::bad_alloc();
  }

  /* Releases every block of the instance (region-style). */
  ~PerThreadAllocator() { fancy_allocator_destroy(handle_); }

  PerThreadAllocator(const PerThreadAllocator &) = delete;
  PerThreadAllocator &operator=(const PerThreadAllocator &) = delete;

  /* The moved-from object owns nothing: its destructor does nothing and it
   * may only be destroyed or assigned to. */
  PerThreadAllocator(PerThreadAllocator &&other) noexcept
      : handle_(std::exchange(other.handle_, nullptr)) {}

  /* Destroys the instance this object owned (and its blocks), then takes
   * over other's. */
  PerThreadAllocator &operator=(PerThreadAllocator &&other) noexcept {
    if (this != &other) {
      fancy_allocator_destroy(handle_);
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }

  /* size bytes, 16-byte aligned; nullptr (errno ENOMEM) on failure, as
   * fancy_allocator_malloc(3). */
  [[nodiscard]] void *allocate(std::size_t size) noexcept {
    return fancy_allocator_malloc(handle_, size);
  }

  /* size bytes aligned to alignment (a power of two); nullptr with errno
   * EINVAL or ENOMEM on failure.  Note the order of the arguments, which is
   * the reverse of fancy_allocator_aligned_alloc(3) and aligned_alloc(3). */
  [[nodiscard]] void *allocateAligned(std::size_t size,
                                      std::size_t alignment) noexcept {
    return fancy_allocator_aligned_alloc(handle_, alignment, size);
  }

  /* Frees a block of this instance (nullptr does nothing).  A block of any
   * other instance aborts the process. */
  void deallocate(void *ptr) noexcept { fancy_allocator_free(handle_, ptr); }

  /* Usable bytes of a block of this instance; 0 for nullptr. */
  std::size_t usableSize(const void *ptr) const noexcept {
    return fancy_allocator_usable_size(handle_, ptr);
  }

  /* fancy_allocator_print_stats(3): this instance only (stderr if null). */
  void stats(std::FILE *out = nullptr) const noexcept {
    fancy_allocator_print_stats(handle_, out);
  }

  /* fancy_allocator_validate(3): true when the instance is consistent. */
  bool validate() const noexcept { return fancy_allocator_validate(handle_); }

  /* fancy_allocator_check_leaks(3): reports live blocks of this instance
   * to stderr; true if there are any. */
  bool checkLeaks() const noexcept {
    return fancy_allocator_check_leaks(handle_);
  }

  /* The raw handle, for the C API or an stl_allocator; nullptr after a
   * move. */
  fancy_allocator_t *get() const noexcept { return handle_; }

private:
  static fancy_allocator_config_t make_config(std::size_t arenaSize,
                                              bool enableReclamation) noexcept {
    fancy_allocator_config_t c{};
    c.arena_size = arenaSize;
    c.reclamation = enableReclamation ? 1 : 0;
    return c;
  }

  fancy_allocator_t *handle_;
};

/* ------------------------------------------------------------------------
 * stl_allocator<T>: a standard Allocator over an instance.
 *
 * Propagation traits.  A block must be freed into the instance that
 * allocated it (anything else aborts), so the choices below keep every
 * buffer with an allocator that can free it:
 *   - move assignment propagates (true): the target takes over the
 *     source's buffer together with the source's instance, in O(1) and
 *     without exceptions, instead of copying element by element into its
 *     own instance;
 *   - swap propagates (true): with unequal allocators and no propagation,
 *     std::swap of two containers is undefined behaviour and would later
 *     free each buffer into the wrong instance;
 *   - copy assignment does not propagate (false): a copy lands in the
 *     target container's own instance, as with copy construction from
 *     select_on_container_copy_construction, so a container created in an
 *     instance stays there (the std::pmr convention);
 *   - is_always_equal is false: two stl_allocators are equal exactly when
 *     they use the same instance.
 * ---------------------------------------------------------------------- */
template <class T>
class stl_allocator {
public:
  using value_type = T;
  using size_type = std::size_t;
  using difference_type = std::ptrdiff_t;
  using propagate_on_container_copy_assignment = std::false_type;
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_swap = std::true_type;
  using is_always_equal = std::false_type;

  template <class U>
  struct rebind {
    using other = stl_allocator<U>;
  };

  /* The default instance, that of fancy_malloc(3). */
  stl_allocator() noexcept : handle_(fancy_allocator_default()) {}

  /* The given instance (nullptr: the default instance).  Not explicit, so
   * that a container can be given a handle or a PerThreadAllocator. */
  stl_allocator(fancy_allocator_t *handle) noexcept
      : handle_(handle != nullptr ? handle : fancy_allocator_default()) {}
  stl_allocator(const PerThreadAllocator &owner) noexcept
      : stl_allocator(owner.get()) {}

  /* Rebinding: the same instance for another type. */
  template <class U>
  stl_allocator(const stl_allocator<U> &other) noexcept
      : handle_(other.get()) {}

  /* n objects of T; std::bad_array_new_length when n * sizeof(T) overflows,
   * std::bad_alloc when the instance has no memory.  Types aligned to more
   * than the 16 bytes every block has are allocated with
   * fancy_allocator_aligned_alloc(). */
  [[nodiscard]] T *allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T))
      throw std::bad_array_new_length();
    void *p;
    if constexpr (alignof(T) > 16)
      p = fancy_allocator_aligned_alloc(handle_, alignof(T), n * sizeof(T));
    else
      p = fancy_allocator_malloc(handle_, n * sizeof(T));
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T *>(p);
  }

  void deallocate(T *p, std::size_t) noexcept {
    fancy_allocator_free(handle_, p);
  }

  fancy_allocator_t *get() const noexcept { return handle_; }

private:
  fancy_allocator_t *handle_;
};

template <class T, class U>
bool operator==(const stl_allocator<T> &a, const stl_allocator<U> &b) noexcept {
  return a.get() == b.get();
}

template <class T, class U>
bool operator!=(const stl_allocator<T> &a, const stl_allocator<U> &b) noexcept {
  return a.get() != b.get();
}

}  // namespace fancy

#endif /* C++17 */
#endif /* FANCYALLOC_HPP */
