/*
 * test_util.h -- what the scenario files share: one "world" of stacks,
 * failure recording, a deterministic PRNG, pattern buffers, and the knobs of
 * the counting realloc.  Internal to tests/c/.
 *
 * Scenarios run one at a time, so the world is a global: entry functions
 * reach it without threading a pointer through every frame.
 */
#ifndef STL_TEST_UTIL_H
#define STL_TEST_UTIL_H

#include "stl_switch.h"
#include "test_alloc.h"

#include <stddef.h>
#include <stdint.h>

#define TEST_NOINLINE __attribute__((noinline))
#define TEST_MAX_STACKS 256

typedef struct test_world {
    stl_thread t;
    stl_stack main;
    stl_stack s[TEST_MAX_STACKS];
} test_world;

extern test_world W;

/* Binds W.t to W.main and makes every W.s[i] unstarted; clears failures. */
void test_world_init(void);
/* Frees every spill buffer of the world. */
void test_world_release(void);

/* Records the first failure (code, expression, place); returns `code`. */
int test_fail(int code, const char *expr, const char *file, int line);
/* The first recorded failure code, or 0. */
int test_failed(void);
const char *test_failure_text(void);
/* The measured value that the harness reports (see stl_test_unit). */
void test_set_value(long v);
long test_value(void);

/* Fail the scenario (from any function returning int) unless `cond`. */
#define TEST_CHECK(cond, code)                                          \
    do {                                                                \
        if (!(cond))                                                    \
            return test_fail((code), #cond, __FILE__, __LINE__);        \
    } while (0)

/* On the main stack, after each switch returns: a stack may have failed. */
#define TEST_RESUMED()                                                  \
    do {                                                                \
        if (test_failed())                                              \
            return test_failed();                                       \
    } while (0)

/* Ends the running stack: records rc if no failure is recorded yet and
 * exits to W.main.  Never returns. */
void test_exit_to_main(int rc) __attribute__((noreturn));
/* Ends the running stack with stl_exit(target) when rc is 0; else, or if
 * that exit fails, records the failure and exits to W.main. */
void test_exit_to(stl_stack *target, int rc) __attribute__((noreturn));
/* 1 if `cur` runs and no switch or start is half-done in W.t. */
int test_quiet(const stl_stack *cur);

/* splitmix64: the same sequence on every machine. */
void test_rng_seed(uint64_t seed);
uint64_t test_rng(void);
unsigned test_rng_below(unsigned n);
uint64_t test_mix(uint64_t x);

/* Fill `n` words with a pattern derived from `key`; 1 if they still hold it. */
void test_fill(uint64_t *p, size_t n, uint64_t key);
int test_holds(const uint64_t *p, size_t n, uint64_t key);

/* The counting realloc (test_util.c). */
void test_alloc_reset(void);          /* zero the count, no injected failure */
long test_alloc_calls(void);          /* calls since the reset */
void test_alloc_fail_nth(long n);     /* the n-th call from now fails (1: the next) */
void test_alloc_fail_all(int on);     /* every call fails while on */

/* The scenarios, in table order (test_harness.c); codes n*100+k. */
int test_states(void);              /*  1  switch_scenarios.c */
int test_einval(void);              /*  2 */
int test_exit_to_parent(void);      /*  3 */
int test_exit_start_chain(void);    /*  4 */
int test_ping_pong(void);           /*  5 */
int test_ping_pong_main(void);      /*  6 */
int test_nested_chain(void);        /*  7 */
int test_spill_shallow(void);       /*  8 */
int test_resume_grandchild(void);   /*  9 */
int test_exit_to_child(void);       /* 10 */
int test_deep_recursion(void);      /* 11  switch_stress.c */
int test_random_graph(void);        /* 12 */
int test_callee_saved(void);        /* 13 */
int test_fp_control(void);          /* 14 */
int test_steady_state_no_alloc(void); /* 15  switch_alloc.c */
int test_enomem_retry(void);        /* 16 */
int test_enomem_partial(void);      /* 17 */
int test_enomem_exit(void);         /* 18 */
int test_dead_window_reuse(void);   /* 19  switch_stress.c */
int test_callee_saved_routine(void); /* 20 */

#endif /* STL_TEST_UTIL_H */
