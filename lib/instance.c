/* SPDX-License-Identifier: MIT */
/*
 * instance.c - allocator instances: fancy_allocator_t, the design
 * document's FancyPerThreadAllocator.
 *
 * An instance (fa_domain_t) has its own per-thread heaps; its segments and
 * huge blocks are tagged with it, so two instances never share a block's
 * memory and a block freed into the wrong instance is caught.  Empty
 * segments carry no instance and are shared through the cache and the
 * reserve.  The default instance is reached through the TLS heap pointer
 * (the malloc fast path); any other through its own pthread key, whose
 * destructor hands a thread's heap back when the thread exits.
 *
 * A handle is not an address: it is (generation << 6) | slot, with a
 * generation counted over every instance ever created, so the handle of a
 * destroyed instance never names the next instance made in its slot; every
 * call checks both and aborts on a stale or made-up handle.  The default
 * instance's handle is the address of its domain (or NULL).
 */
#include "internal.h"

struct fancy_allocator {
  fa_domain_t domain;     /* first: a fancy_allocator_t * is an fa_domain_t * */
};

pthread_mutex_t _fa_domains_lock = PTHREAD_MUTEX_INITIALIZER;
fa_domain_t _fa_domain_default = {
  .magic = FA_DOMAIN_MAGIC,
  .index = 0,
  .arena_size = (size_t)64 << 20,
};
static struct fancy_allocator fa_instances[FA_MAX_DOMAINS];   /* [0] unused */
static uint64_t fa_generation;   /* instances created so far; domains lock */
#define FA_HANDLE_SLOT_BITS 6
_Static_assert(FA_MAX_DOMAINS == 1 << FA_HANDLE_SLOT_BITS, "a slot fills the low handle bits");

void _fa_domain_default_init(void) {
  _fa_domain_default.arena_size = _fa_opt.arena_size;
  _fa_domain_default.memory_limit = _fa_opt.memory_limit;
  _fa_domain_default.reclaim = _fa_opt.reclaim;
  _fa_domain_default.huge_pages = _fa_opt.huge_pages;
  _fa_domain_default.huge_blocks = _fa_opt.huge_pages || _fa_opt.huge_blocks;
  _fa_domain_default.populate = _fa_opt.populate;
}

/* Count bytes more against d's limit; false (nothing counted) past it. */
bool _fa_domain_charge(fa_domain_t *d, size_t bytes) {
  /* atomic: FANCY_MEMORY_LIMIT=auto may change the default's (limit.c) */
  return _fa_limit_charge(&d->mapped, __atomic_load_n(&d->memory_limit, __ATOMIC_RELAXED), bytes);
}

void _fa_domain_uncharge(fa_domain_t *d, size_t bytes) { _fa_limit_uncharge(&d->mapped, bytes); }

static void fa_domain_thread_done(void *value) {
  if (value != NULL) _fa_heap_done(value);
}

fa_heap_t *_fa_domain_heap_new(fa_domain_t *d) {
  fa_heap_t *heap = _fa_heap_new(d);
  if (heap == NULL) return NULL;
  pthread_setspecific(d->key, heap);
  if (d->reclaim) _fa_reclaim_maybe_start();
  return heap;
}

/* The instance behind a handle: NULL means the default one; a handle that
 * is not a live instance is a bug and aborts. */
static fa_domain_t *fa_instance(fancy_allocator_t *a) {
  if (a == NULL || a == (fancy_allocator_t *)&_fa_domain_default) return &_fa_domain_default;
  uintptr_t h = (uintptr_t)a;
  uintptr_t slot = h & (FA_MAX_DOMAINS - 1);
  fa_domain_t *d = &fa_instances[slot].domain;
  if (fa_unlikely(slot == 0 || d->magic != FA_DOMAIN_MAGIC ||
                  d->generation != (uint64_t)(h >> FA_HANDLE_SLOT_BITS)))
    _fa_fatal("invalid or destroyed allocator instance %p", (void *)a);
  return d;
}

/* The calling thread's heap in d, made on first use (NULL: no memory). */
static fa_heap_t *fa_instance_heap(fa_domain_t *d) {
  if (d == &_fa_domain_default) return fa_heap_get();   /* empty: set up lazily */
  fa_heap_t *heap = pthread_getspecific(d->key);
  return heap != NULL ? heap : _fa_domain_heap_new(d);
}

static bool fa_setting(int v, bool process) { return v > 0 ? true : v < 0 ? false : process; }

fancy_allocator_t *fancy_allocator_create(const fancy_allocator_config_t *config) FANCY_NOEXCEPT {
  _fa_process_init();
  fancy_allocator_config_t c = {0};
  if (config != NULL) c = *config;
  pthread_mutex_lock(&_fa_domains_lock);
  fa_domain_t *d = NULL;
  for (unsigned i = 1; i < FA_MAX_DOMAINS && d == NULL; i++)
    if (fa_instances[i].domain.magic != FA_DOMAIN_MAGIC) d = &fa_instances[i].domain;
  if (d == NULL) {
    pthread_mutex_unlock(&_fa_domains_lock);
    errno = EAGAIN;
    return NULL;
  }
  d->index = (unsigned)((struct fancy_allocator *)d - fa_instances);
  d->arena_size = c.arena_size ? c.arena_size : _fa_opt.arena_size;
  if (d->arena_size < FA_SEGMENT_SIZE) d->arena_size = FA_SEGMENT_SIZE;
  d->memory_limit = c.memory_limit;
  d->reclaim = fa_setting(c.reclamation, _fa_opt.reclaim);
  d->huge_pages = fa_setting(c.huge_pages, _fa_opt.huge_pages);
  d->huge_blocks = fa_setting(c.huge_pages, _fa_opt.huge_pages || _fa_opt.huge_blocks);
  d->populate = fa_setting(c.populate, _fa_opt.populate);
  atomic_store_explicit(&d->mapped, 0, memory_order_relaxed);
  if (pthread_key_create(&d->key, fa_domain_thread_done) != 0) {
    pthread_mutex_unlock(&_fa_domains_lock);
    errno = EAGAIN;
    return NULL;
  }
  d->generation = ++fa_generation;
  d->magic = FA_DOMAIN_MAGIC;
  pthread_mutex_unlock(&_fa_domains_lock);
  return (fancy_allocator_t *)(uintptr_t)((d->generation << FA_HANDLE_SLOT_BITS) | d->index);
}

/* Region-style: everything of the instance goes at once, live or not. */
void fancy_allocator_destroy(fancy_allocator_t *allocator) FANCY_NOEXCEPT {
  fa_domain_t *d = fa_instance(allocator);
  if (d == &_fa_domain_default) return;
  pthread_mutex_lock(&_fa_domains_lock);
  d->magic = 0;
  pthread_key_delete(d->key);
  _fa_heaps_release_domain(d);      /* and its segments */
  _fa_huge_release_domain(d);
  pthread_mutex_unlock(&_fa_domains_lock);
}

fancy_allocator_t *fancy_allocator_default(void) FANCY_NOEXCEPT {
  return (fancy_allocator_t *)&_fa_domain_default;
}

void *fancy_allocator_malloc(fancy_allocator_t *allocator, size_t size) FANCY_NOEXCEPT {
  fa_heap_t *heap = fa_instance_heap(fa_instance(allocator));
  if (heap == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  return fa_heap_malloc(heap, size);
}

void *fancy_allocator_calloc(fancy_allocator_t *allocator, size_t nmemb,
                             size_t size) FANCY_NOEXCEPT {
  fa_heap_t *heap = fa_instance_heap(fa_instance(allocator));
  if (heap == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  return _fa_calloc(heap, nmemb, size);
}

void *fancy_allocator_realloc(fancy_allocator_t *allocator, void *ptr,
                              size_t size) FANCY_NOEXCEPT {
  fa_heap_t *heap = fa_instance_heap(fa_instance(allocator));
  if (heap == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  return _fa_realloc(heap, ptr, size);
}

void *fancy_allocator_aligned_alloc(fancy_allocator_t *allocator, size_t alignment,
                                    size_t size) FANCY_NOEXCEPT {
  fa_domain_t *d = fa_instance(allocator);
  if (!fa_is_power_of_two(alignment)) {
    errno = EINVAL;
    return NULL;
  }
  fa_heap_t *heap = fa_instance_heap(d);
  if (heap == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  return _fa_aligned_alloc(heap, alignment, size);
}

void fancy_allocator_free(fancy_allocator_t *allocator, void *ptr) FANCY_NOEXCEPT {
  fa_domain_t *d = fa_instance(allocator);
  fa_heap_t *heap = fa_domain_thread_heap(d);
  fa_heap_free(d, heap != NULL ? heap : &_fa_heap_empty, ptr);
}

size_t fancy_allocator_usable_size(fancy_allocator_t *allocator,
                                   const void *ptr) FANCY_NOEXCEPT {
  (void)fa_instance(allocator);
  return _fa_usable_size((uintptr_t)ptr);
}

void fancy_allocator_print_stats(fancy_allocator_t *allocator, FILE *out) FANCY_NOEXCEPT {
  _fa_stats_print(fa_instance(allocator), out);
}

bool fancy_allocator_validate(fancy_allocator_t *allocator) FANCY_NOEXCEPT {
  return _fa_validate(fa_instance(allocator));
}

bool fancy_allocator_check_leaks(fancy_allocator_t *allocator) FANCY_NOEXCEPT {
  return _fa_check_leaks(fa_instance(allocator));
}
