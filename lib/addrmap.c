/* SPDX-License-Identifier: MIT */
/*
 * addrmap.c - the map of the address space: one byte per 4 MiB unit
 * (FA_UNIT_*) saying whether a segment or a huge block lives there, so
 * that free learns what a pointer is with one load, and a pointer that is
 * not ours reads as FA_UNIT_NONE.
 */
#include "internal.h"

static uint8_t fa_unit_map_none[1];
uint8_t *_fa_unit_map = fa_unit_map_none;
size_t _fa_unit_count;

/* Process set-up; without the map nothing can be allocated (a segment
 * or huge block must be findable from its address). */
void _fa_unit_map_init(void) {
  void *map = _fa_os_map_table(FA_UNITS);
  if (map == NULL) return;
  __atomic_store_n(&_fa_unit_map, (uint8_t *)map, __ATOMIC_RELAXED);
  __atomic_store_n(&_fa_unit_count, FA_UNITS, __ATOMIC_RELEASE);
}

void _fa_segmap_set(uintptr_t addr, unsigned kind) {
  uintptr_t unit = addr >> FA_SEGMENT_SHIFT;
  if (unit < _fa_unit_count) __atomic_store_n(&_fa_unit_map[unit], (uint8_t)kind, __ATOMIC_RELEASE);
}
