/*
 * switch_alloc.c -- scenarios about the core's only allocation, the growth
 * of spill buffers (through STL_REALLOC = stl_test_realloc): none once the
 * buffers fit, and a clean STL_ENOMEM when one cannot grow.  Codes 15xx-18xx.
 */
#include "test_util.h"

#include <stdint.h>

#define ARG(i) ((void *)(intptr_t)(i))
#define IDX(arg) ((int)(intptr_t)(arg))

/* ---- steady state: no allocation -------------------------------------- */

#define SS_WARM 64
#define SS_ROUNDS (SS_WARM + 2000)
#define SS_WORDS 32

static long ss_calls_warm;
static long ss_calls_end;

/* Recurses `depth` frames of SS_WORDS words, switches to the other stack
 * at the bottom, and checks each frame on the way back. */
static int ss_dive(int id, int depth)
{
    uint64_t buf[SS_WORDS];

    test_fill(buf, SS_WORDS, 0x15000 + (uint64_t)id * 64 + (uint64_t)depth);
    if (depth > 0) {
        int rc = ss_dive(id, depth - 1);
        if (rc != 0)
            return rc;
    } else {
        TEST_CHECK(stl_switch(&W.t, &W.s[1 - id]) == STL_OK, 1501);
        TEST_CHECK(test_quiet(&W.s[id]), 1502);
    }
    TEST_CHECK(test_holds(buf, SS_WORDS, 0x15000 + (uint64_t)id * 64 + (uint64_t)depth), 1503);
    return 0;
}

/* SS_ROUNDS dives; s0 reads the allocation count after warm-up and at the end. */
static int ss_body(int id)
{
    if (id == 0)        /* back to main, which starts s1 beside s0 */
        TEST_CHECK(stl_switch(&W.t, &W.main) == STL_OK, 1504);
    for (int r = 0; r < SS_ROUNDS; r++) {
        if (id == 0 && r == SS_WARM)
            ss_calls_warm = test_alloc_calls();
        int rc = ss_dive(id, (r * (id + 3)) % 8);
        if (rc != 0)
            return rc;
    }
    if (id == 0)
        ss_calls_end = test_alloc_calls();
    return 0;
}

static void ss_entry(void *arg)
{
    test_exit_to_main(ss_body(IDX(arg)));
}

/*
 * Two sibling stacks switch at depths that cycle through 0..7 frames; after
 * SS_WARM rounds the spill buffers fit every combination, and the next 2000
 * rounds (4000 switches) must not call realloc once.
 */
int test_steady_state_no_alloc(void)
{
    ss_calls_warm = ss_calls_end = -1;
    TEST_CHECK(stl_start(&W.t, &W.s[0], ss_entry, ARG(0)) == STL_OK, 1510);
    TEST_RESUMED();
    TEST_CHECK(stl_start(&W.t, &W.s[1], ss_entry, ARG(1)) == STL_OK, 1511);
    TEST_RESUMED();
    for (int j = 0; j < 2; j++)
        if (stl_stack_active(&W.s[j])) {
            TEST_CHECK(stl_switch(&W.t, &W.s[j]) == STL_OK, 1512);
            TEST_RESUMED();
        }
    TEST_CHECK(stl_stack_dead(&W.s[0]) && stl_stack_dead(&W.s[1]), 1513);
    TEST_CHECK(ss_calls_warm > 0, 1514);            /* the counting realloc is wired in */
    TEST_CHECK(ss_calls_end == ss_calls_warm, 1515);
    test_set_value(ss_calls_warm);
    return 0;
}

/* ---- ENOMEM, then retry ------------------------------------------------- */

static int en_main_resumed;

/* In s0: the failed switch, the checks that nothing happened, the retry. */
static int enomem_retry_body(void)
{
    stl_stack *self = &W.s[0];
    uint64_t buf[32];

    test_fill(buf, 32, 0x16000);
    test_alloc_fail_nth(1);
    TEST_CHECK(stl_switch(&W.t, &W.main) == STL_ENOMEM, 1601);
    TEST_CHECK(test_quiet(self) && stl_stack_active(self) && !stl_stack_dead(self), 1602);
    TEST_CHECK(en_main_resumed == 0, 1603);
    TEST_CHECK(self->saved == 0, 1604);
    TEST_CHECK(test_holds(buf, 32, 0x16000), 1605);
    test_fill(buf, 32, 0x16001);
    TEST_CHECK(stl_switch(&W.t, &W.main) == STL_OK, 1606);
    TEST_CHECK(test_quiet(self), 1607);
    TEST_CHECK(test_holds(buf, 32, 0x16001), 1608);
    return 0;
}

static void enomem_retry_entry(void *arg)
{
    (void)arg;
    test_exit_to_main(enomem_retry_body());
}

/*
 * s0's first switch to main needs a spill buffer; the allocation fails:
 * STL_ENOMEM, s0 still runs, main never ran.  The retry works, and s0's
 * frame is intact when main resumes it.
 */
int test_enomem_retry(void)
{
    en_main_resumed = 0;
    TEST_CHECK(stl_start(&W.t, &W.s[0], enomem_retry_entry, NULL) == STL_OK, 1610);
    TEST_RESUMED();
    en_main_resumed = 1;
    TEST_CHECK(test_quiet(&W.main), 1611);
    TEST_CHECK(W.s[0].saved == (size_t)(W.s[0].stop - W.s[0].start), 1612);
    TEST_CHECK(stl_switch(&W.t, &W.s[0]) == STL_OK, 1613);
    TEST_RESUMED();
    TEST_CHECK(stl_stack_dead(&W.s[0]), 1614);
    return 0;
}

/* ---- ENOMEM after part of the spill was done ---------------------------- */

static long en_global;
static size_t en_saved_after_fail;

/*
 * s2 switches to s0: that spills s2 (one allocation), then s1 (a second,
 * which fails).  s2 runs on and changes its frame, then switches again.
 * When s0 resumes s2, s2 must find the frame of its second attempt.
 */
static int enomem_partial_c(void)
{
    volatile long v = 0;

    for (int attempt = 1; attempt <= 2; attempt++) {
        v = attempt;
        en_global = attempt;
        test_alloc_fail_nth(attempt == 1 ? 2 : 0);
        int rc = stl_switch(&W.t, &W.s[0]);
        TEST_CHECK(v == en_global, 1701);
        if (attempt == 1) {
            TEST_CHECK(rc == STL_ENOMEM, 1702);
            TEST_CHECK(test_quiet(&W.s[2]), 1703);
            en_saved_after_fail = W.s[2].saved;
        } else {
            TEST_CHECK(rc == STL_OK, 1704);
        }
    }
    TEST_CHECK(v == 2 && en_global == 2, 1705);
    return 0;
}

static void enomem_c_entry(void *arg)
{
    (void)arg;
    test_exit_to(&W.s[1], enomem_partial_c());
}

static void enomem_ab_entry(void *arg);

/* s0 and s1: start the next one, check their frame, exit to their parent. */
static int enomem_ab(int id)
{
    uint64_t buf[64];
    int rc;

    test_fill(buf, 64, 0x17000 + (uint64_t)id);
    if (id == 1) {
        rc = stl_start(&W.t, &W.s[2], enomem_c_entry, NULL);
    } else {
        rc = stl_start(&W.t, &W.s[1], enomem_ab_entry, ARG(1));
        TEST_CHECK(rc == STL_OK, 1710);
        TEST_CHECK(test_holds(buf, 64, 0x17000), 1711);
        /* s2 got here after its second attempt; send it back. */
        rc = stl_switch(&W.t, &W.s[2]);
    }
    TEST_CHECK(rc == STL_OK, 1712);
    TEST_CHECK(test_holds(buf, 64, 0x17000 + (uint64_t)id), 1713);
    return 0;
}

static void enomem_ab_entry(void *arg)
{
    int id = IDX(arg);
    test_exit_to(id == 1 ? &W.s[0] : &W.main, enomem_ab(id));
}

/*
 * main starts s0, s0 starts s1, s1 starts s2; s2's switch to s0 fails
 * half-way (see enomem_partial_c), its retry succeeds, s0 resumes s2, and
 * the chain unwinds by exits: s2 to s1, s1 to s0, s0 to main.
 */
int test_enomem_partial(void)
{
    en_global = 0;
    en_saved_after_fail = (size_t)-1;
    TEST_CHECK(stl_start(&W.t, &W.s[0], enomem_ab_entry, ARG(0)) == STL_OK, 1720);
    TEST_RESUMED();
    for (int i = 0; i < 3; i++)
        TEST_CHECK(stl_stack_dead(&W.s[i]), 1721);
    /* the running stack's bytes are live: none may count as spilled */
    TEST_CHECK(en_saved_after_fail == 0, 1722);
    return 0;
}

/* ---- ENOMEM in stl_exit ------------------------------------------------- */

static int enomem_exit_b(void)
{
    stl_stack *self = &W.s[1];

    test_alloc_fail_nth(1);
    TEST_CHECK(stl_exit(&W.t, &W.main) == STL_ENOMEM, 1801);
    TEST_CHECK(test_quiet(self), 1802);
    TEST_CHECK(stl_stack_active(self) && !stl_stack_dead(self), 1803);
    return 0;
}

static void enomem_exit_b_entry(void *arg)
{
    (void)arg;
    test_exit_to_main(enomem_exit_b());
}

/* In s0: starts s1 (whose first exit fails), then checks its own frame. */
static int enomem_exit_a(void)
{
    uint64_t buf[64];

    test_fill(buf, 64, 0x18000);
    TEST_CHECK(stl_start(&W.t, &W.s[1], enomem_exit_b_entry, NULL) == STL_OK, 1810);
    TEST_CHECK(test_quiet(&W.s[0]), 1811);
    TEST_CHECK(test_holds(buf, 64, 0x18000), 1812);
    return 0;
}

static void enomem_exit_a_entry(void *arg)
{
    (void)arg;
    test_exit_to_main(enomem_exit_a());
}

/*
 * s1 (started in s0) exits to main; that needs s0 spilled, and the
 * allocation fails: STL_ENOMEM, s1 still alive and running.  Its second
 * exit works; main then resumes s0, whose frame is intact.
 */
int test_enomem_exit(void)
{
    TEST_CHECK(stl_start(&W.t, &W.s[0], enomem_exit_a_entry, NULL) == STL_OK, 1820);
    TEST_RESUMED();
    TEST_CHECK(stl_stack_dead(&W.s[1]) && stl_stack_active(&W.s[0]), 1821);
    TEST_CHECK(stl_switch(&W.t, &W.s[0]) == STL_OK, 1822);
    TEST_RESUMED();
    TEST_CHECK(stl_stack_dead(&W.s[0]), 1823);
    return 0;
}
