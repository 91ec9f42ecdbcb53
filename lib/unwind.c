/* SPDX-License-Identifier: MIT */
/*
 * unwind.c - the heap profiler's call stacks, walked with rules kept per
 * return address (x86-64 Linux; elsewhere _fa_unwind always declines).
 *
 * libgcc's _Unwind_Backtrace looks up, decodes and interprets each frame's
 * call-frame information (the FDE in .eh_frame) afresh at every sample and
 * restores all seventeen registers: about 2,650 cycles a sample in larson,
 * whose samples come ~29,000 a second with the unwinder's code and tables
 * out of cache each time.  Going from a frame to its caller needs three
 * rules only: where the canonical frame address (CFA) is (%rsp or %rbp
 * plus an offset), where the return address is saved, and where %rbp is
 * saved if the frame saved it (a caller's CFA may be %rbp-based).  Those
 * are worked out once per return address, by interpreting its FDE (found
 * with libgcc's _Unwind_Find_FDE, as libgcc finds it), and kept in a
 * process-wide table of write-once slots: later walks cost a lookup and
 * two loads per frame.
 *
 * _Unwind_Find_FDE returns NULL for code without unwind information: the
 * walk ends there, as libgcc's does.  Everything this walker does not
 * model (a signal frame, a rule given as a DWARF expression or in another
 * register, the 64-bit DWARF format) makes _fa_unwind return -1, and the
 * caller takes libgcc's walk for that sample.  So does a stack address
 * outside [the walk's first %rsp, the top of the thread's stack): every
 * load is inside the calling thread's stack, even should a rule be stale
 * (code unloaded and other code loaded at its address), and a sample
 * taken on an alternate signal stack goes to libgcc.
 *
 * States of a slot of the table: empty (key 0); claimed (key set, rule
 * not yet valid: readers work the rule out themselves); filled (key and
 * valid rule, for good).  Slots are claimed by compare-and-swap on the
 * key; no lock.  A full table only means that rules are worked out again.
 */
#include "internal.h"

_Atomic size_t _fa_unwind_worked_out;     /* rules interpreted from an FDE */
_Atomic size_t _fa_unwind_stack_lookups;  /* stack bounds asked of pthread_getattr_np */

#if defined __x86_64__ && defined __linux__

#include <pthread.h>

#define FA_UNWIND_SLOTS 4096   /* a power of two: 64 KiB of .bss */
#define FA_UNWIND_PROBES 8
#define FA_UNWIND_NEST 8       /* DW_CFA_remember_state depth */

/* DWARF register numbers of the x86-64 psABI */
#define FA_DW_RBP 6
#define FA_DW_RSP 7
#define FA_DW_RA 16

/* A frame's rules in one word: flags in bits 0-7, the return address's
 * offset from the CFA in 8-15 (in words), %rbp's in 16-31 (bytes), the
 * CFA's offset from its register in 32-63. */
#define FA_RULE_VALID 1u
#define FA_RULE_END 2u      /* outermost frame: the return address is undefined */
#define FA_RULE_BAD 4u      /* not modelled: the sample goes to libgcc */
#define FA_RULE_CFA_BP 8u   /* CFA = %rbp + offset, else %rsp + offset */
#define FA_RULE_BP_SAVED 16u
#define FA_RULE_NOCACHE 32u /* no FDE: not kept (code may be registered later) */

typedef struct fa_unwind_slot_s {
  _Atomic uintptr_t key;   /* the address rules are looked up at; 0 = empty */
  _Atomic uint64_t rule;
} fa_unwind_slot_t;

static fa_unwind_slot_t fa_unwind_cache[FA_UNWIND_SLOTS];
static FA_TLS uintptr_t fa_unwind_lo, fa_unwind_hi;   /* this thread's stack */

/* ------------------------------------------------------------------------
 * Reading .eh_frame
 * ---------------------------------------------------------------------- */
typedef struct fa_dw_s {
  const uint8_t *p, *end;
  bool bad;
} fa_dw_t;

static uint8_t fa_dw_u8(fa_dw_t *d) {
  if (d->p >= d->end) {
    d->bad = true;
    return 0;
  }
  return *d->p++;
}

static uint64_t fa_dw_fixed(fa_dw_t *d, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; i++) v |= (uint64_t)fa_dw_u8(d) << (8 * i);
  return v;
}

/* A LEB128 number, sign-extended when it is a signed one. */
static uint64_t fa_dw_leb(fa_dw_t *d, bool is_signed) {
  uint64_t v = 0;
  unsigned shift = 0;
  uint8_t b;
  do {
    b = fa_dw_u8(d);
    if (shift < 64) v |= (uint64_t)(b & 0x7f) << shift;
    shift += 7;
  } while ((b & 0x80) && !d->bad);
  if (is_signed && shift < 64 && (b & 0x40)) v |= ~(uint64_t)0 << shift;
  return v;
}

static uint64_t fa_dw_uleb(fa_dw_t *d) { return fa_dw_leb(d, false); }
static int64_t fa_dw_sleb(fa_dw_t *d) { return (int64_t)fa_dw_leb(d, true); }

static void fa_dw_skip(fa_dw_t *d, uint64_t n) {
  if (n > (uint64_t)(d->end - d->p)) d->bad = true;
  else d->p += n;
}

/* Past a pointer in encoding enc (DW_EH_PE_*); its value is not needed. */
static void fa_dw_skip_encoded(fa_dw_t *d, uint8_t enc) {
  if (enc == 0xff) return;                      /* omitted */
  if ((enc & 0x70) == 0x50) d->bad = true;      /* aligned: not in .eh_frame */
  switch (enc & 0x0f) {
  case 0x00: case 0x04: case 0x0c: fa_dw_skip(d, 8); break;
  case 0x02: case 0x0a: fa_dw_skip(d, 2); break;
  case 0x03: case 0x0b: fa_dw_skip(d, 4); break;
  case 0x01: fa_dw_uleb(d); break;
  case 0x09: fa_dw_sleb(d); break;
  default: d->bad = true;
  }
}

/* One row of the CFA table, for the registers the walk needs. */
enum { FA_REG_SAME, FA_REG_OFFSET, FA_REG_UNDEFINED, FA_REG_OTHER };
typedef struct fa_cfa_row_s {
  uint64_t cfa_reg;               /* FA_DW_RSP or FA_DW_RBP, else not modelled */
  int64_t cfa_off;
  bool cfa_expr;
  uint8_t kind[2];                /* %rbp, return address */
  int64_t off[2];                 /* from the CFA, FA_REG_OFFSET */
} fa_cfa_row_t;

/* reg's place in a row's kind[] and off[]; -1 for registers not modelled */
static int fa_cfa_slot(uint64_t reg) { return reg == FA_DW_RBP ? 0 : reg == FA_DW_RA ? 1 : -1; }

static void fa_cfa_rule(fa_cfa_row_t *row, uint64_t reg, uint8_t kind, int64_t off) {
  int i = fa_cfa_slot(reg);
  if (i < 0) return;
  row->kind[i] = kind;
  row->off[i] = off;
}

/* Interprets the call-frame instructions in d from address loc on, up to
 * the row that holds at target.  init: the row after the CIE's initial
 * instructions (NULL while running those).  False when an instruction is
 * not understood. */
static bool fa_cfa_run(fa_dw_t *d, fa_cfa_row_t *row, const fa_cfa_row_t *init, uintptr_t loc,
                       uintptr_t target, uint64_t code_align, int64_t data_align) {
  fa_cfa_row_t saved[FA_UNWIND_NEST];
  unsigned nsaved = 0;
  while (d->p < d->end && !d->bad) {
    uint8_t op = fa_dw_u8(d);
    uint64_t reg, delta = 0;
    switch (op >> 6) {
    case 1: delta = op & 0x3f; goto advance;
    case 2:
      fa_cfa_rule(row, op & 0x3f, FA_REG_OFFSET, (int64_t)fa_dw_uleb(d) * data_align);
      continue;
    case 3:
      reg = op & 0x3f;
      goto restore;
    default: break;
    }
    switch (op) {
    case 0x00: continue;                                   /* nop */
    case 0x02: delta = fa_dw_u8(d); goto advance;
    case 0x03: delta = fa_dw_fixed(d, 2); goto advance;
    case 0x04: delta = fa_dw_fixed(d, 4); goto advance;
    case 0x05:                                             /* offset_extended */
      reg = fa_dw_uleb(d);
      fa_cfa_rule(row, reg, FA_REG_OFFSET, (int64_t)fa_dw_uleb(d) * data_align);
      continue;
    case 0x06: reg = fa_dw_uleb(d); goto restore;
    case 0x07: fa_cfa_rule(row, fa_dw_uleb(d), FA_REG_UNDEFINED, 0); continue;
    case 0x08: fa_cfa_rule(row, fa_dw_uleb(d), FA_REG_SAME, 0); continue;
    case 0x09:                                             /* register */
      reg = fa_dw_uleb(d);
      fa_dw_uleb(d);
      fa_cfa_rule(row, reg, FA_REG_OTHER, 0);
      continue;
    case 0x0a:                                             /* remember_state */
      if (nsaved == FA_UNWIND_NEST) return false;
      saved[nsaved++] = *row;
      continue;
    case 0x0b:                                             /* restore_state */
      if (nsaved == 0) return false;
      *row = saved[--nsaved];
      continue;
    case 0x0c:                                             /* def_cfa */
      row->cfa_reg = fa_dw_uleb(d);
      row->cfa_off = (int64_t)fa_dw_uleb(d);
      row->cfa_expr = false;
      continue;
    case 0x0d: row->cfa_reg = fa_dw_uleb(d); continue;
    case 0x0e: row->cfa_off = (int64_t)fa_dw_uleb(d); continue;
    case 0x0f:                                             /* def_cfa_expression */
      fa_dw_skip(d, fa_dw_uleb(d));
      row->cfa_expr = true;
      continue;
    case 0x10: case 0x16:                                  /* (val_)expression */
      reg = fa_dw_uleb(d);
      fa_dw_skip(d, fa_dw_uleb(d));
      fa_cfa_rule(row, reg, FA_REG_OTHER, 0);
      continue;
    case 0x11:                                             /* offset_extended_sf */
      reg = fa_dw_uleb(d);
      fa_cfa_rule(row, reg, FA_REG_OFFSET, fa_dw_sleb(d) * data_align);
      continue;
    case 0x12:                                             /* def_cfa_sf */
      row->cfa_reg = fa_dw_uleb(d);
      row->cfa_off = fa_dw_sleb(d) * data_align;
      row->cfa_expr = false;
      continue;
    case 0x13: row->cfa_off = fa_dw_sleb(d) * data_align; continue;
    case 0x14: case 0x15:                                  /* val_offset(_sf) */
      reg = fa_dw_uleb(d);
      if (op == 0x14) fa_dw_uleb(d);
      else fa_dw_sleb(d);
      fa_cfa_rule(row, reg, FA_REG_OTHER, 0);
      continue;
    case 0x2e: fa_dw_uleb(d); continue;                    /* GNU_args_size */
    case 0x2f:                                             /* GNU_negative_offset_extended */
      reg = fa_dw_uleb(d);
      fa_cfa_rule(row, reg, FA_REG_OFFSET, -(int64_t)fa_dw_uleb(d) * data_align);
      continue;
    default: return false;                                 /* set_loc, vendor ops */
    }
  advance:
    if (init == NULL) continue;                            /* not in a CIE */
    if (delta * code_align > target - loc) return true;    /* the row for target */
    loc += delta * code_align;
    continue;
  restore:
    if (init == NULL) return false;
    int i = fa_cfa_slot(reg);   /* back to its rule after the CIE */
    if (i >= 0) {
      row->kind[i] = init->kind[i];
      row->off[i] = init->off[i];
    }
    continue;
  }
  return !d->bad;
}

static uint32_t fa_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The rules at address `at` (a return address minus one, or the walk's
 * own first address), from its FDE. */
static uint64_t fa_unwind_work_out(uintptr_t at, fa_find_fde_t find) {
  struct {
    void *tbase, *dbase, *func;   /* libgcc's struct dwarf_eh_bases */
  } bases;
  const uint8_t *fde = find((void *)at, &bases);
  if (fde == NULL) return FA_RULE_VALID | FA_RULE_END | FA_RULE_NOCACHE;
  atomic_fetch_add_explicit(&_fa_unwind_worked_out, 1, memory_order_relaxed);
  uint32_t len = fa_le32(fde);
  if (len == 0 || len == 0xffffffffu) return FA_RULE_VALID | FA_RULE_BAD;
  const uint8_t *cie = fde + 4 - fa_le32(fde + 4);
  uint32_t clen = fa_le32(cie);
  if (clen == 0 || clen == 0xffffffffu || fa_le32(cie + 4) != 0) return FA_RULE_VALID | FA_RULE_BAD;

  fa_dw_t c = {cie + 8, cie + 4 + clen, false};
  uint8_t version = fa_dw_u8(&c);
  const char *aug = (const char *)c.p;   /* read up to alen only */
  size_t alen = 0;
  while (c.p + alen < c.end && aug[alen] != '\0') alen++;
  fa_dw_skip(&c, alen + 1);
  char aug0 = alen > 0 ? aug[0] : '\0';
  if (version == 4) fa_dw_skip(&c, 2);     /* address and segment selector sizes */
  uint64_t code_align = fa_dw_uleb(&c);
  int64_t data_align = fa_dw_sleb(&c);
  uint64_t ra_reg = version == 1 ? fa_dw_u8(&c) : fa_dw_uleb(&c);
  uint8_t fde_enc = 0;
  bool z = aug0 == 'z';
  if (c.bad || ra_reg != FA_DW_RA || (version != 1 && version != 3 && version != 4) ||
      (aug0 != 'z' && aug0 != '\0'))
    return FA_RULE_VALID | FA_RULE_BAD;
  if (z) {
    uint64_t n = fa_dw_uleb(&c);
    const uint8_t *aug_end = c.p + n;
    if (n > (uint64_t)(c.end - c.p)) return FA_RULE_VALID | FA_RULE_BAD;
    for (size_t i = 1; i < alen; i++) {
      if (aug[i] == 'R') fde_enc = fa_dw_u8(&c);
      else if (aug[i] == 'P') fa_dw_skip_encoded(&c, fa_dw_u8(&c));
      else if (aug[i] == 'L') fa_dw_u8(&c);
      else if (aug[i] == 'S') return FA_RULE_VALID | FA_RULE_BAD;   /* a signal frame */
      else break;                                           /* the length skips the rest */
    }
    c.p = aug_end;
  }

  fa_cfa_row_t row = {.cfa_reg = ~(uint64_t)0, .kind = {FA_REG_SAME, FA_REG_SAME}};
  if (!fa_cfa_run(&c, &row, NULL, 0, 0, code_align, data_align)) return FA_RULE_VALID | FA_RULE_BAD;
  fa_cfa_row_t init = row;
  fa_dw_t f = {fde + 8, fde + 4 + len, false};
  fa_dw_skip_encoded(&f, fde_enc);          /* the function's start: bases.func */
  fa_dw_skip_encoded(&f, fde_enc & 0x0f);   /* its length */
  if (z) fa_dw_skip(&f, fa_dw_uleb(&f));
  if (f.bad || !fa_cfa_run(&f, &row, &init, (uintptr_t)bases.func, at, code_align, data_align))
    return FA_RULE_VALID | FA_RULE_BAD;

  if (row.kind[1] == FA_REG_UNDEFINED) return FA_RULE_VALID | FA_RULE_END;
  if (row.cfa_expr || (row.cfa_reg != FA_DW_RSP && row.cfa_reg != FA_DW_RBP) ||
      row.kind[1] != FA_REG_OFFSET || (row.kind[0] != FA_REG_SAME && row.kind[0] != FA_REG_OFFSET) ||
      row.cfa_off < INT32_MIN || row.cfa_off > INT32_MAX || row.off[1] % 8 != 0 ||
      row.off[1] / 8 < INT8_MIN || row.off[1] / 8 > INT8_MAX || row.off[0] < INT16_MIN ||
      row.off[0] > INT16_MAX)
    return FA_RULE_VALID | FA_RULE_BAD;
  uint64_t r = FA_RULE_VALID;
  if (row.cfa_reg == FA_DW_RBP) r |= FA_RULE_CFA_BP;
  if (row.kind[0] == FA_REG_OFFSET) r |= FA_RULE_BP_SAVED;
  r |= (uint64_t)(uint8_t)(int8_t)(row.off[1] / 8) << 8;
  r |= (uint64_t)(uint16_t)(int16_t)row.off[0] << 16;
  r |= (uint64_t)(uint32_t)(int32_t)row.cfa_off << 32;
  return r;
}

/* The rules at `at`, from the table, or worked out and put there. */
static uint64_t fa_unwind_rule(uintptr_t at, fa_find_fde_t find) {
  size_t h = (size_t)((at * 0x9e3779b97f4a7c15u) >> 52);   /* 12 bits: FA_UNWIND_SLOTS */
  for (unsigned i = 0; i < FA_UNWIND_PROBES; i++) {
    fa_unwind_slot_t *s = &fa_unwind_cache[(h + i) & (FA_UNWIND_SLOTS - 1)];
    uintptr_t key = atomic_load_explicit(&s->key, memory_order_acquire);
    if (key == at) {
      uint64_t r = atomic_load_explicit(&s->rule, memory_order_acquire);
      return (r & FA_RULE_VALID) ? r : fa_unwind_work_out(at, find);   /* being filled */
    }
    if (key == 0) {
      uint64_t r = fa_unwind_work_out(at, find);
      if (!(r & FA_RULE_NOCACHE) &&
          atomic_compare_exchange_strong_explicit(&s->key, &key, at, memory_order_acq_rel,
                                                  memory_order_acquire))
        atomic_store_explicit(&s->rule, r, memory_order_release);
      return r;
    }
  }
  return fa_unwind_work_out(at, find);
}

/* The bounds of the stack blocks met so far, by the thread pointer of a
 * thread that ran on them.  pthread_getattr_np makes a system call
 * (sched_getaffinity) and two allocations: 8-17 us a thread on the 2-core
 * VM (as much as a fifth of creating and joining the thread), which
 * larson, starting ~1,900 threads a second that each take a sample or
 * more, paid at every thread's first sample.  glibc keeps a thread's
 * descriptor, where the thread pointer points, at the top of its stack
 * block and gives the blocks of exited threads to new ones: a thread on a
 * block met before finds its bounds here.  Slot states: empty (tp 0);
 * claimed (tp set, hi 0: readers look the bounds up themselves); filled
 * (hi set last, for good).  A full table only means a lookup.
 * Two blocks with the same thread pointer have the same top (the
 * descriptor sits at the same place below it), so the walk's bound on
 * its loads holds; only the bottom, which tells a stack from an
 * alternate signal stack, may be that of an earlier block of another size
 * at that place. */
#define FA_STACK_SLOTS 256   /* a power of two */

typedef struct fa_stack_slot_s {
  _Atomic uintptr_t tp, lo, hi;
} fa_stack_slot_t;

static fa_stack_slot_t fa_stacks_known[FA_STACK_SLOTS];

static uintptr_t fa_thread_pointer(void) {
  uintptr_t tp;
  __asm__("movq %%fs:0, %0" : "=r"(tp));   /* the x86-64 TLS ABI: fs:0 holds it */
  return tp;
}

static bool fa_stack_lookup(uintptr_t *lo, uintptr_t *hi) {
  pthread_attr_t a;
  void *addr;
  size_t size;
  atomic_fetch_add_explicit(&_fa_unwind_stack_lookups, 1, memory_order_relaxed);
  if (pthread_getattr_np(pthread_self(), &a) != 0) return false;
  int e = pthread_attr_getstack(&a, &addr, &size);
  pthread_attr_destroy(&a);
  if (e != 0) return false;
  *lo = (uintptr_t)addr;
  *hi = (uintptr_t)addr + size;
  return true;
}

/* This thread's stack bounds: from the table, or looked up and kept (the
 * shape of fa_unwind_rule, the table of rules above). */
static bool fa_stack_bounds(uintptr_t *lo, uintptr_t *hi) {
  uintptr_t tp = fa_thread_pointer();
  size_t h = (size_t)((tp >> 12) * 0x9e3779b97f4a7c15ULL >> 56);   /* 8 bits: FA_STACK_SLOTS */
  for (unsigned i = 0; i < FA_UNWIND_PROBES; i++) {
    fa_stack_slot_t *s = &fa_stacks_known[(h + i) & (FA_STACK_SLOTS - 1)];
    uintptr_t key = atomic_load_explicit(&s->tp, memory_order_acquire);
    if (key == tp) {
      uintptr_t top = atomic_load_explicit(&s->hi, memory_order_acquire);
      if (top == 0) return fa_stack_lookup(lo, hi);   /* being filled */
      *lo = atomic_load_explicit(&s->lo, memory_order_relaxed);
      *hi = top;
      return true;
    }
    if (key == 0) {
      if (!fa_stack_lookup(lo, hi)) return false;
      if (atomic_compare_exchange_strong_explicit(&s->tp, &key, tp, memory_order_acq_rel,
                                                  memory_order_acquire)) {
        atomic_store_explicit(&s->lo, *lo, memory_order_relaxed);
        atomic_store_explicit(&s->hi, *hi, memory_order_release);
      }
      return true;
    }
  }
  return fa_stack_lookup(lo, hi);
}

/* Whether sp is on this thread's stack, whose top is then *top.  Found
 * once per thread, in the table of stack blocks or else by
 * pthread_getattr_np (which allocates: the caller holds the profiler's
 * guard). */
static bool fa_unwind_stack(uintptr_t sp, uintptr_t *top) {
  if (fa_unwind_hi == 0) {
    uintptr_t lo, hi;
    if (!fa_stack_bounds(&lo, &hi)) return false;
    fa_unwind_lo = lo;
    fa_unwind_hi = hi;
  }
  *top = fa_unwind_hi;
  return sp >= fa_unwind_lo && sp < fa_unwind_hi;
}

FA_NOINLINE int _fa_unwind(void **pc, int max, fa_find_fde_t find) {
  uintptr_t ip, sp, bp, top;
  __asm__ volatile("leaq 0(%%rip), %0\n\tmovq %%rsp, %1\n\tmovq %%rbp, %2"
                   : "=r"(ip), "=r"(sp), "=r"(bp));
  if (find == NULL || !fa_unwind_stack(sp, &top)) return -1;
  uintptr_t at = ip;   /* this frame's rules hold at ip itself */
  int n = 0;
  while (n < max) {
    uint64_t r = fa_unwind_rule(at, find);
    if (r & FA_RULE_BAD) return -1;
    if (r & FA_RULE_END) break;
    uintptr_t cfa = ((r & FA_RULE_CFA_BP) ? bp : sp) + (uintptr_t)(int64_t)(int32_t)(r >> 32);
    uintptr_t ra_at = cfa + (uintptr_t)((int64_t)(int8_t)(r >> 8) * 8);
    uintptr_t bp_at = cfa + (uintptr_t)(int64_t)(int16_t)(r >> 16);
    /* the caller's frame is above this one, and all of it on this stack */
    if (cfa <= sp || cfa > top || ra_at < sp || ra_at > top - 8 || (ra_at & 7) != 0) return -1;
    if ((r & FA_RULE_BP_SAVED) && (bp_at < sp || bp_at > top - 8 || (bp_at & 7) != 0)) return -1;
    ip = *(const uintptr_t *)ra_at;
    if (r & FA_RULE_BP_SAVED) bp = *(const uintptr_t *)bp_at;
    sp = cfa;
    if (ip == 0) break;
    pc[n++] = (void *)ip;   /* from the caller of this function on, as libgcc's walk */
    at = ip - 1;            /* the call, not what follows it (a noreturn call may end a function) */
  }
  return n;
}

#else

FA_NOINLINE int _fa_unwind(void **pc, int max, fa_find_fde_t find) {
  (void)pc;
  (void)max;
  (void)find;
  return -1;
}

#endif
