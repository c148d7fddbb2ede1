/*
 * switch_scenarios.c -- the basic scenarios of the switch core: states,
 * argument errors, starting and exiting, ping-pong, nested chains, and the
 * size of a shallow spill.  The stress scenarios (deep recursion, random
 * graphs, registers, floating-point control) are in switch_stress.c, the
 * allocation scenarios in switch_alloc.c, the table in test_harness.c.
 *
 * Every scenario starts on W.main in a fresh world (test_world_init) and
 * returns 0 or the code of the first failed check.  Codes: 1xx for the first
 * scenario of this file, 2xx for the second, and so on.  A stack runs
 * X_entry(arg), which calls X_body (checks written as returns) and then
 * leaves with test_exit_to or test_exit_to_main, recording any failure.
 */
#include "test_util.h"

#include <stdint.h>

#define ARG(i) ((void *)(intptr_t)(i))
#define IDX(arg) ((int)(intptr_t)(arg))

/* ---- states: unstarted, running, suspended, dead ---------------------- */

static int states_body(void *arg)
{
    stl_stack *self = &W.s[0];

    TEST_CHECK(arg == &W, 101);
    TEST_CHECK(test_quiet(self), 102);
    TEST_CHECK(stl_stack_active(self) && !stl_stack_dead(self), 103);
    TEST_CHECK(stl_stack_active(&W.main) && !stl_stack_dead(&W.main), 104);
    TEST_CHECK(stl_switch(&W.t, &W.main) == STL_OK, 105);
    TEST_CHECK(test_quiet(self), 106);
    return 0;
}

static void states_entry(void *arg)
{
    test_exit_to_main(states_body(arg));
}

/*
 * A stack is unstarted, then active while it runs and while it is
 * suspended, then dead; the main stack is active throughout.
 */
int test_states(void)
{
    stl_stack *s = &W.s[0];

    TEST_CHECK(stl_stack_active(&W.main) && !stl_stack_dead(&W.main), 110);
    TEST_CHECK(!stl_stack_active(s) && !stl_stack_dead(s), 111);
    TEST_CHECK(stl_start(&W.t, s, states_entry, &W) == STL_OK, 112);
    TEST_RESUMED();
    TEST_CHECK(test_quiet(&W.main), 113);
    TEST_CHECK(stl_stack_active(s) && !stl_stack_dead(s), 114);
    TEST_CHECK(stl_switch(&W.t, s) == STL_OK, 115);
    TEST_RESUMED();
    TEST_CHECK(test_quiet(&W.main), 116);
    TEST_CHECK(stl_stack_dead(s) && !stl_stack_active(s), 117);
    return 0;
}

/* ---- argument errors ---------------------------------------------------- */

static void exit_at_once_entry(void *arg)
{
    (void)arg;
    test_exit_to_main(0);
}

static void never_entry(void *arg)
{
    (void)arg;
    test_exit_to_main(test_fail(290, "never_entry ran", __FILE__, __LINE__));
}

/*
 * Inside s0, with s1 dead and s2 unstarted: every wrong call returns
 * STL_EINVAL and changes nothing -- the caller still runs and lives.
 */
static int einval_body(void *arg)
{
    stl_stack *self = &W.s[0], *dead = &W.s[1], *fresh = &W.s[2];
    (void)arg;

#define STILL_FINE(code) \
    TEST_CHECK(test_quiet(self) && stl_stack_active(self) && !stl_stack_dead(self), code)
    TEST_CHECK(stl_switch(&W.t, self) == STL_EINVAL, 201);
    STILL_FINE(202);
    TEST_CHECK(stl_switch(&W.t, dead) == STL_EINVAL, 203);
    STILL_FINE(204);
    TEST_CHECK(stl_switch(&W.t, fresh) == STL_EINVAL, 205);
    STILL_FINE(206);
    TEST_CHECK(stl_start(&W.t, self, never_entry, NULL) == STL_EINVAL, 207);
    STILL_FINE(208);
    TEST_CHECK(stl_start(&W.t, &W.main, never_entry, NULL) == STL_EINVAL, 209);
    STILL_FINE(210);
    TEST_CHECK(stl_start(&W.t, dead, never_entry, NULL) == STL_EINVAL, 211);
    STILL_FINE(212);
    TEST_CHECK(stl_exit(&W.t, self) == STL_EINVAL, 213);
    STILL_FINE(214);
    TEST_CHECK(stl_exit(&W.t, dead) == STL_EINVAL, 215);
    STILL_FINE(216);
    TEST_CHECK(stl_exit(&W.t, fresh) == STL_EINVAL, 217);
    STILL_FINE(218);
    TEST_CHECK(stl_exit_start(&W.t, self, never_entry, NULL) == STL_EINVAL, 219);
    STILL_FINE(220);
    TEST_CHECK(stl_exit_start(&W.t, &W.main, never_entry, NULL) == STL_EINVAL, 221);
    STILL_FINE(222);
    TEST_CHECK(stl_exit_start(&W.t, dead, never_entry, NULL) == STL_EINVAL, 223);
    STILL_FINE(224);
#undef STILL_FINE
    TEST_CHECK(!stl_stack_active(fresh) && !stl_stack_dead(fresh), 225);
    TEST_CHECK(stl_stack_dead(dead), 226);
    TEST_CHECK(stl_switch(&W.t, &W.main) == STL_OK, 227);
    return 0;
}

static void einval_entry(void *arg)
{
    test_exit_to_main(einval_body(arg));
}

/*
 * STL_EINVAL: switch to self, to a dead or an unstarted stack; start of a
 * started or dead one; exit or exit_start to any of those.
 */
int test_einval(void)
{
    stl_stack *s0 = &W.s[0], *dead = &W.s[1], *fresh = &W.s[2];

    TEST_CHECK(stl_switch(&W.t, &W.main) == STL_EINVAL, 230);
    TEST_CHECK(test_quiet(&W.main), 231);
    TEST_CHECK(stl_switch(&W.t, fresh) == STL_EINVAL, 232);
    TEST_CHECK(stl_start(&W.t, dead, exit_at_once_entry, NULL) == STL_OK, 233);
    TEST_RESUMED();
    TEST_CHECK(stl_stack_dead(dead), 234);
    TEST_CHECK(stl_switch(&W.t, dead) == STL_EINVAL, 235);
    TEST_CHECK(stl_start(&W.t, dead, never_entry, NULL) == STL_EINVAL, 236);
    TEST_CHECK(test_quiet(&W.main), 237);
    TEST_CHECK(stl_start(&W.t, s0, einval_entry, NULL) == STL_OK, 238);
    TEST_RESUMED();
    TEST_CHECK(stl_start(&W.t, s0, never_entry, NULL) == STL_EINVAL, 239);
    TEST_CHECK(test_quiet(&W.main), 240);
    TEST_CHECK(stl_switch(&W.t, s0) == STL_OK, 241);
    TEST_RESUMED();
    TEST_CHECK(stl_stack_dead(s0), 242);
    return 0;
}

/* ---- exit to the parent ------------------------------------------------ */

static void leaf_entry(void *arg)
{
    uint64_t buf[16];

    test_fill(buf, 16, 0x3100 + (uintptr_t)arg);
    if (!test_quiet(&W.s[1]) || !test_holds(buf, 16, 0x3100 + (uintptr_t)arg))
        test_exit_to_main(test_fail(301, "leaf: current/locals", __FILE__, __LINE__));
    test_exit_to(&W.s[0], 0);
}

/* In s0: starts s1, which exits back here at once. */
static int parent_body(void)
{
    uint64_t buf[32];

    test_fill(buf, 32, 0x3200);
    TEST_CHECK(stl_start(&W.t, &W.s[1], leaf_entry, ARG(7)) == STL_OK, 310);
    TEST_CHECK(test_quiet(&W.s[0]), 311);
    TEST_CHECK(stl_stack_dead(&W.s[1]), 312);
    TEST_CHECK(test_holds(buf, 32, 0x3200), 313);
    return 0;
}

static void parent_entry(void *arg)
{
    (void)arg;
    test_exit_to_main(parent_body());
}

/*
 * main starts s0, s0 starts s1; s1 exits to s0, s0 exits to main.  Starting
 * a stack and exiting to the stack right above never spill anything, so all
 * of it works with every allocation failing.
 */
int test_exit_to_parent(void)
{
    uint64_t buf[32];

    test_fill(buf, 32, 0x3300);
    test_alloc_fail_all(1);
    int rc = stl_start(&W.t, &W.s[0], parent_entry, NULL);
    test_alloc_fail_all(0);
    TEST_CHECK(rc == STL_OK, 320);
    TEST_RESUMED();
    TEST_CHECK(test_quiet(&W.main), 321);
    TEST_CHECK(stl_stack_dead(&W.s[0]) && stl_stack_dead(&W.s[1]), 322);
    TEST_CHECK(test_alloc_calls() == 0, 323);
    TEST_CHECK(test_holds(buf, 32, 0x3300), 324);
    return 0;
}

/* ---- exit_start: a dying stack starts the next ------------------------- */

#define LINKS 200

/* In link i: its predecessor is dead, its successor unstarted. */
static int link_body(int i)
{
    uint64_t buf[8];

    test_fill(buf, 8, 0x4000 + (unsigned)i);
    TEST_CHECK(test_quiet(&W.s[i]), 401);
    TEST_CHECK(i == 0 || stl_stack_dead(&W.s[i - 1]), 402);
    TEST_CHECK(!stl_stack_active(&W.s[i + 1]), 403);
    TEST_CHECK(test_holds(buf, 8, 0x4000 + (unsigned)i), 404);
    return 0;
}

static void link_entry(void *arg)
{
    int i = IDX(arg);
    int rc = link_body(i);

    if (rc == 0 && i + 1 < LINKS) {
        stl_exit_start(&W.t, &W.s[i + 1], link_entry, ARG(i + 1));
        rc = test_fail(405, "stl_exit_start returned", __FILE__, __LINE__);
    }
    test_exit_to_main(rc);
}

/*
 * A chain of LINKS stacks, each started by the previous one as it dies.
 * Reports how far down the C stack each link starts below the previous one:
 * the new stack runs below the dying one's frames.
 */
int test_exit_start_chain(void)
{
    uint64_t buf[16];

    test_fill(buf, 16, 0x4100);
    TEST_CHECK(stl_start(&W.t, &W.s[0], link_entry, ARG(0)) == STL_OK, 410);
    TEST_RESUMED();
    TEST_CHECK(test_quiet(&W.main), 411);
    for (int i = 0; i < LINKS; i++)
        TEST_CHECK(stl_stack_dead(&W.s[i]), 412);
    TEST_CHECK(test_holds(buf, 16, 0x4100), 413);
    test_set_value((long)((W.s[0].stop - W.s[LINKS - 1].stop) / (LINKS - 1)));
    return 0;
}

/* ---- ping-pong ------------------------------------------------------------ */

#define PING_PONGS 20000

static long pp_turn;
static long pp_count[2];

static void pp_entry(void *arg);

/* s0's first round starts s1 instead of switching to it. */
static int pp_start_other(void)
{
    return stl_start(&W.t, &W.s[1], pp_entry, ARG(1));
}

/*
 * Stack `id` (0 or 1) runs PING_PONGS rounds; the turn counter proves the two
 * strictly alternate, the local counter that each one's frame survives.
 */
static int pp_body(int id)
{
    stl_stack *other = &W.s[1 - id];
    long mine = 0;

    for (int i = 0; i < PING_PONGS; i++) {
        TEST_CHECK(pp_turn % 2 == id, 501);
        pp_turn++;
        pp_count[id]++;
        mine++;
        int rc = (id == 0 && i == 0) ? pp_start_other() : stl_switch(&W.t, other);
        TEST_CHECK(rc == STL_OK, 502);
        TEST_CHECK(test_quiet(&W.s[id]), 503);
        TEST_CHECK(mine == pp_count[id], 504);
    }
    return 0;
}

static void pp_entry(void *arg)
{
    int id = IDX(arg);
    int rc = pp_body(id);

    if (rc == 0 && id == 0) {           /* wake s1 so it finishes, then go */
        rc = stl_switch(&W.t, &W.s[1]);
        if (rc == 0 && !stl_stack_dead(&W.s[1]))
            rc = test_fail(505, "s1 dead after its last round", __FILE__, __LINE__);
    }
    test_exit_to(id == 0 ? &W.main : &W.s[0], rc);
}

/*
 * s0 and s1 (s1 started inside s0) switch back and forth PING_PONGS times
 * each; then s1 exits to s0 and s0 to main.
 */
int test_ping_pong(void)
{
    pp_turn = 0;
    pp_count[0] = pp_count[1] = 0;
    TEST_CHECK(stl_start(&W.t, &W.s[0], pp_entry, ARG(0)) == STL_OK, 510);
    TEST_RESUMED();
    TEST_CHECK(pp_count[0] == PING_PONGS && pp_count[1] == PING_PONGS, 511);
    TEST_CHECK(pp_turn == 2 * PING_PONGS, 512);
    TEST_CHECK(stl_stack_dead(&W.s[0]) && stl_stack_dead(&W.s[1]), 513);
    TEST_CHECK(test_quiet(&W.main), 514);
    return 0;
}

/* ---- ping-pong with main -------------------------------------------------- */

static long ppm_count;
static int ppm_stop;

/* In s0: one round per resume until main sets ppm_stop. */
static int ppm_body(void)
{
    long mine = 0;

    while (!ppm_stop) {
        TEST_CHECK(mine == ppm_count, 601);
        mine++;
        ppm_count++;
        TEST_CHECK(stl_switch(&W.t, &W.main) == STL_OK, 602);
        TEST_CHECK(test_quiet(&W.s[0]), 603);
    }
    return 0;
}

static void ppm_entry(void *arg)
{
    (void)arg;
    test_exit_to_main(ppm_body());
}

/* main and s0 switch back and forth PING_PONGS times. */
int test_ping_pong_main(void)
{
    ppm_count = 0;
    ppm_stop = 0;
    TEST_CHECK(stl_start(&W.t, &W.s[0], ppm_entry, NULL) == STL_OK, 610);
    TEST_RESUMED();
    for (long i = 1; i < PING_PONGS; i++) {
        TEST_CHECK(ppm_count == i, 611);
        TEST_CHECK(stl_switch(&W.t, &W.s[0]) == STL_OK, 612);
        TEST_RESUMED();
        TEST_CHECK(test_quiet(&W.main), 613);
    }
    ppm_stop = 1;
    TEST_CHECK(stl_switch(&W.t, &W.s[0]) == STL_OK, 614);
    TEST_RESUMED();
    TEST_CHECK(ppm_count == PING_PONGS && stl_stack_dead(&W.s[0]), 615);
    return 0;
}

/* ---- a chain of nested starts ------------------------------------------ */

#define CHAIN 100

static int chain_visits[CHAIN];

static void chain_entry(void *arg);

/*
 * Stack i starts stack i+1 (the last one switches to main), is visited once
 * by main, then resumed by i+1's exit; its buffer must survive all three.
 */
static int chain_body(int i)
{
    uint64_t buf[24];
    int rc;

    test_fill(buf, 24, 0x7000 + (unsigned)i);
    if (i + 1 < CHAIN)
        rc = stl_start(&W.t, &W.s[i + 1], chain_entry, ARG(i + 1));
    else
        rc = stl_switch(&W.t, &W.main);
    TEST_CHECK(rc == STL_OK, 701);
    TEST_CHECK(test_quiet(&W.s[i]), 702);
    TEST_CHECK(test_holds(buf, 24, 0x7000 + (unsigned)i), 703);
    chain_visits[i]++;
    TEST_CHECK(stl_switch(&W.t, &W.main) == STL_OK, 704);
    TEST_CHECK(test_quiet(&W.s[i]), 705);
    TEST_CHECK(test_holds(buf, 24, 0x7000 + (unsigned)i), 706);
    TEST_CHECK(i + 1 == CHAIN || stl_stack_dead(&W.s[i + 1]), 707);
    chain_visits[i]++;
    return 0;
}

static void chain_entry(void *arg)
{
    int i = IDX(arg);

    test_exit_to(i > 0 ? &W.s[i - 1] : &W.main, chain_body(i));
}

/*
 * main starts s0, s0 starts s1, ... down to s99, which switches to main:
 * every window is then wholly on the heap.  main visits each stack once
 * (shallowest first), then resumes s99, and the chain unwinds by exits
 * (s99 to s98, ..., s0 to main).
 */
int test_nested_chain(void)
{
    for (int i = 0; i < CHAIN; i++)
        chain_visits[i] = 0;
    TEST_CHECK(stl_start(&W.t, &W.s[0], chain_entry, ARG(0)) == STL_OK, 710);
    TEST_RESUMED();
    for (int i = 0; i < CHAIN; i++) {
        stl_stack *s = &W.s[i];
        TEST_CHECK(stl_stack_active(s), 711);
        TEST_CHECK(s->saved == (size_t)(s->stop - s->start), 712);
        TEST_CHECK(i == 0 || s->stop <= W.s[i - 1].start, 713);
    }
    for (int i = 0; i < CHAIN; i++) {
        TEST_CHECK(stl_switch(&W.t, &W.s[i]) == STL_OK, 714);
        TEST_RESUMED();
        TEST_CHECK(chain_visits[i] == 1, 715);
    }
    TEST_CHECK(stl_switch(&W.t, &W.s[CHAIN - 1]) == STL_OK, 716);
    TEST_RESUMED();
    for (int i = 0; i < CHAIN; i++)
        TEST_CHECK(stl_stack_dead(&W.s[i]) && chain_visits[i] == 2, 717);
    TEST_CHECK(test_quiet(&W.main), 718);
    return 0;
}

/* ---- the size of a shallow spill ---------------------------------------- */

static void shallow_entry(void *arg)
{
    (void)arg;
    int rc = stl_switch(&W.t, &W.main);
    test_exit_to_main(rc == STL_OK ? 0 : test_fail(801, "switch to main", __FILE__, __LINE__));
}

/*
 * s0 switches back to main as soon as it starts: its whole window (entry
 * frame, stl_switch's frame, the routine's saved registers) goes to the
 * heap.  The value is that byte count.
 */
int test_spill_shallow(void)
{
    stl_stack *s = &W.s[0];

    TEST_CHECK(stl_start(&W.t, s, shallow_entry, NULL) == STL_OK, 810);
    TEST_RESUMED();
    TEST_CHECK(s->saved == (size_t)(s->stop - s->start), 811);
    TEST_CHECK(s->saved > 0 && s->saved <= 4096, 812);
    TEST_CHECK(s->cap >= s->saved, 813);
    test_set_value((long)s->saved);
    TEST_CHECK(stl_switch(&W.t, s) == STL_OK, 814);
    TEST_RESUMED();
    TEST_CHECK(stl_stack_dead(s), 815);
    return 0;
}

/* ---- resuming a stack below the caller's stack pointer ------------------ */

/* In s1: suspends to main once, then checks its frame. */
static int grandchild_body(void)
{
    uint64_t buf[32];

    test_fill(buf, 32, 0x9100);
    TEST_CHECK(stl_switch(&W.t, &W.main) == STL_OK, 901);
    TEST_CHECK(test_quiet(&W.s[1]), 902);
    TEST_CHECK(test_holds(buf, 32, 0x9100), 903);
    return 0;
}

static void grandchild_entry(void *arg)
{
    (void)arg;
    test_exit_to_main(grandchild_body());
}

/* In s0: a 512-byte frame between main and s1. */
static int child_with_pad_body(void)
{
    uint64_t pad[64];

    test_fill(pad, 64, 0x9200);
    TEST_CHECK(stl_start(&W.t, &W.s[1], grandchild_entry, NULL) == STL_OK, 910);
    TEST_CHECK(test_quiet(&W.s[0]), 911);
    TEST_CHECK(test_holds(pad, 64, 0x9200), 912);
    return 0;
}

static void child_with_pad_entry(void *arg)
{
    (void)arg;
    test_exit_to_main(child_with_pad_body());
}

/*
 * main starts s0, s0 (with a 512-byte local) starts s1, s1 switches to main,
 * main switches to s1.  main's suspended window now begins above s1's
 * stop, with s0's frames in between: nothing of main needs to move.  Then
 * s1 exits, main resumes s0, s0 exits.
 */
int test_resume_grandchild(void)
{
    TEST_CHECK(stl_start(&W.t, &W.s[0], child_with_pad_entry, NULL) == STL_OK, 920);
    TEST_RESUMED();
    TEST_CHECK(W.s[1].stop < W.s[0].stop, 921);
    TEST_CHECK(stl_switch(&W.t, &W.s[1]) == STL_OK, 922);
    TEST_RESUMED();
    TEST_CHECK(stl_stack_dead(&W.s[1]) && stl_stack_active(&W.s[0]), 923);
    TEST_CHECK(stl_switch(&W.t, &W.s[0]) == STL_OK, 924);
    TEST_RESUMED();
    TEST_CHECK(stl_stack_dead(&W.s[0]) && test_quiet(&W.main), 925);
    return 0;
}

/* ---- a stack exits to its own child -------------------------------------- */

/* In s1: resumed by s0's exit, finds s0 dead and its own frame intact. */
static int exit_child_body(void)
{
    uint64_t buf[16];

    test_fill(buf, 16, 0xa100);
    TEST_CHECK(stl_switch(&W.t, &W.s[0]) == STL_OK, 1001);
    TEST_CHECK(test_quiet(&W.s[1]), 1002);
    TEST_CHECK(stl_stack_dead(&W.s[0]), 1003);
    TEST_CHECK(test_holds(buf, 16, 0xa100), 1004);
    return 0;
}

static void exit_child_entry(void *arg)
{
    (void)arg;
    test_exit_to_main(exit_child_body());
}

/* In s0: starts s1 and is resumed by it once. */
static int exit_parent_body(void)
{
    uint64_t buf[64];

    test_fill(buf, 64, 0xa200);
    TEST_CHECK(stl_start(&W.t, &W.s[1], exit_child_entry, NULL) == STL_OK, 1010);
    TEST_CHECK(test_holds(buf, 64, 0xa200), 1011);
    return 0;
}

static void exit_parent_entry(void *arg)
{
    (void)arg;
    test_exit_to(&W.s[1], exit_parent_body());
}

/*
 * s0 starts s1, s1 switches back to s0, and s0 finishes by exiting to s1,
 * whose window lies below s0's (now garbage) one.
 */
int test_exit_to_child(void)
{
    TEST_CHECK(stl_start(&W.t, &W.s[0], exit_parent_entry, NULL) == STL_OK, 1020);
    TEST_RESUMED();
    TEST_CHECK(stl_stack_dead(&W.s[0]) && stl_stack_dead(&W.s[1]), 1021);
    TEST_CHECK(test_quiet(&W.main), 1022);
    return 0;
}
