/*
 * test_util.c -- the shared pieces of the scenarios (see test_util.h) and
 * the counting realloc that switch.c is compiled against.
 */
#include "test_util.h"
#include "switch_scenarios.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

test_world W;

static int fail_code;
static char fail_text[240];
static long measured;

/*
 * Makes a fresh world: the running stack becomes W.main and every other
 * stack is unstarted.  Old buffers must have been released already.
 */
void test_world_init(void)
{
    memset(&W, 0, sizeof W);
    stl_stack_init_main(&W.main);
    stl_thread_init(&W.t, &W.main);
    for (int i = 0; i < TEST_MAX_STACKS; i++)
        stl_stack_init(&W.s[i]);
    fail_code = 0;
    fail_text[0] = '\0';
    measured = 0;
    test_alloc_reset();
}

/*
 * Frees the spill buffers.  Stacks still suspended are simply abandoned:
 * the core holds nothing else for them.
 */
void test_world_release(void)
{
    stl_stack_release(&W.main);
    for (int i = 0; i < TEST_MAX_STACKS; i++)
        stl_stack_release(&W.s[i]);
}

/*
 * Keeps the first failure only: later ones are usually its consequences.
 */
int test_fail(int code, const char *expr, const char *file, int line)
{
    if (fail_code == 0) {
        const char *base = strrchr(file, '/');
        fail_code = code;
        snprintf(fail_text, sizeof fail_text, "%s:%d: %s",
                 base ? base + 1 : file, line, expr);
    }
    return code;
}

int test_failed(void)
{
    return fail_code;
}

const char *test_failure_text(void)
{
    return fail_text;
}

void test_set_value(long v)
{
    measured = v;
}

long test_value(void)
{
    return measured;
}

/*
 * The common end of a stack's entry function.  A failure inside a stack
 * cannot be returned, so it is recorded and the stack exits to main, whose
 * TEST_RESUMED() then returns it.
 */
void test_exit_to_main(int rc)
{
    if (rc != 0 && fail_code == 0)
        test_fail(rc, "(a stack body returned this code)", __FILE__, __LINE__);
    stl_exit(&W.t, &W.main);
    fprintf(stderr, "test_exit_to_main: stl_exit failed\n");
    abort();
}

void test_exit_to(stl_stack *target, int rc)
{
    if (rc == 0) {
        stl_exit(&W.t, target);
        rc = test_fail(STL_TEST_EXIT_FAILED, "stl_exit(target) == STL_OK", __FILE__, __LINE__);
    }
    test_exit_to_main(rc);
}

int test_quiet(const stl_stack *cur)
{
    return W.t.current == cur && W.t.target == NULL && W.t.entry == NULL
        && W.t.entry_arg == NULL;
}

static uint64_t rng_state;

void test_rng_seed(uint64_t seed)
{
    rng_state = seed;
}

/* splitmix64's finaliser: a cheap bijection that scrambles every bit. */
uint64_t test_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t test_rng(void)
{
    rng_state += 0x9e3779b97f4a7c15ULL;
    return test_mix(rng_state);
}

unsigned test_rng_below(unsigned n)
{
    return (unsigned)(test_rng() % n);
}

/*
 * Pattern buffers: word i of a buffer keyed `key` is mix(key + i), so two
 * frames, two stacks or two depths never hold the same bytes.  Not inlined,
 * so the buffer really lives in memory across the switches between the fill
 * and the check.
 */
TEST_NOINLINE void test_fill(uint64_t *p, size_t n, uint64_t key)
{
    for (size_t i = 0; i < n; i++)
        p[i] = test_mix(key + i);
}

TEST_NOINLINE int test_holds(const uint64_t *p, size_t n, uint64_t key)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != test_mix(key + i))
            return 0;
    return 1;
}

/* The counting realloc: calls counted, failures injected on demand. */
static long alloc_calls;
static long alloc_fail_in;
static int alloc_fail_every;

void test_alloc_reset(void)
{
    alloc_calls = 0;
    alloc_fail_in = 0;
    alloc_fail_every = 0;
}

long test_alloc_calls(void)
{
    return alloc_calls;
}

void test_alloc_fail_nth(long n)
{
    alloc_fail_in = n;
}

void test_alloc_fail_all(int on)
{
    alloc_fail_every = on;
}

void *stl_test_realloc(void *p, size_t n)
{
    alloc_calls++;
    if (alloc_fail_every)
        return NULL;
    if (alloc_fail_in > 0 && --alloc_fail_in == 0)
        return NULL;
    return realloc(p, n);
}
