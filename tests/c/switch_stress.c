/*
 * switch_stress.c -- scenarios that load the switch core: deep recursion
 * with big frames, random switch graphs, callee-saved registers and the
 * floating-point control state, the reuse of a dead stack's bytes.
 * Codes 11xx-14xx, 19xx and 20xx (see test_util.h).
 */
#include "test_util.h"

#include <fenv.h>
#include <stdint.h>

#define ARG(i) ((void *)(intptr_t)(i))
#define IDX(arg) ((int)(intptr_t)(arg))

/* ---- deep recursion with big frames ------------------------------------ */

#define DEEP_STACKS 3
#define DEEP_LEVELS 48
#define DEEP_WORDS 512          /* 4 KiB of pattern per frame */

static int deep_level[DEEP_STACKS];     /* where each stack is: kept off the stacks */
static size_t deep_max_saved;

static void deep_entry(void *arg);

/* The pattern key of stack id's frame at `level`. */
static uint64_t deep_key(int id, int level)
{
    return ((uint64_t)(id + 1) << 40) | ((uint64_t)level << 16) | 0xdee;
}

/*
 * Switches to the next live stack after `id` (round robin).  s2 starts only
 * when s1 is at least 10 levels deep, so its window lies inside the region
 * s1's deeper frames use.  Returns at once if no other stack is live.
 */
static int deep_yield(int id, int level)
{
    for (int k = 1; k < DEEP_STACKS; k++) {
        int j = (id + k) % DEEP_STACKS;
        stl_stack *s = &W.s[j];
        int rc;

        if (stl_stack_dead(s) || (!stl_stack_active(s) && !(id == 1 && level >= 10)))
            continue;
        if (stl_stack_active(s))
            rc = stl_switch(&W.t, s);
        else
            rc = stl_start(&W.t, s, deep_entry, ARG(j));
        TEST_CHECK(rc == STL_OK, 1101);
        TEST_CHECK(test_quiet(&W.s[id]), 1102);
        TEST_CHECK(deep_level[id] == level, 1103);
        for (int m = 0; m < DEEP_STACKS; m++)
            if (W.s[m].saved > deep_max_saved)
                deep_max_saved = W.s[m].saved;
        return 0;
    }
    return 0;
}

/*
 * One 4 KiB frame per level: filled, then checked after every switch on the
 * way down and on the way back up.
 */
static int deep_recurse(int id, int level)
{
    uint64_t buf[DEEP_WORDS];
    int rc;

    deep_level[id] = level;
    test_fill(buf, DEEP_WORDS, deep_key(id, level));
    if ((rc = deep_yield(id, level)) != 0)
        return rc;
    TEST_CHECK(test_holds(buf, DEEP_WORDS, deep_key(id, level)), 1104);
    if (level + 1 < DEEP_LEVELS) {
        if ((rc = deep_recurse(id, level + 1)) != 0)
            return rc;
        deep_level[id] = level;
        TEST_CHECK(test_holds(buf, DEEP_WORDS, deep_key(id, level)), 1105);
        if ((rc = deep_yield(id, level)) != 0)
            return rc;
        TEST_CHECK(test_holds(buf, DEEP_WORDS, deep_key(id, level)), 1106);
    }
    return 0;
}

static int deep_body(int id)
{
    /* s0 goes back to main first, so that main starts s1 beside it. */
    if (id == 0)
        TEST_CHECK(stl_switch(&W.t, &W.main) == STL_OK, 1107);
    return deep_recurse(id, 0);
}

static void deep_entry(void *arg)
{
    test_exit_to_main(deep_body(IDX(arg)));
}

/*
 * s0 and s1 (siblings: both started by main at the same depth) and s2
 * (started deep inside s1) recurse 48 levels of 4 KiB frames, switching
 * round robin at every level down and up.  Each finished stack exits to
 * main, which resumes whoever is left.  The value is the largest spill.
 */
int test_deep_recursion(void)
{
    deep_max_saved = 0;
    TEST_CHECK(stl_start(&W.t, &W.s[0], deep_entry, ARG(0)) == STL_OK, 1110);
    TEST_RESUMED();
    TEST_CHECK(stl_start(&W.t, &W.s[1], deep_entry, ARG(1)) == STL_OK, 1111);
    TEST_RESUMED();
    for (int round = 0; round < DEEP_STACKS; round++)
        for (int j = 0; j < DEEP_STACKS; j++)
            if (stl_stack_active(&W.s[j])) {
                TEST_CHECK(stl_switch(&W.t, &W.s[j]) == STL_OK, 1112);
                TEST_RESUMED();
            }
    for (int j = 0; j < DEEP_STACKS; j++)
        TEST_CHECK(stl_stack_dead(&W.s[j]), 1113);
    TEST_CHECK(deep_max_saved >= (size_t)DEEP_LEVELS * DEEP_WORDS * 8 / 2, 1114);
    test_set_value((long)deep_max_saved);
    return 0;
}

/* ---- a dead stack's region reused ---------------------------------------- */

#define REUSE_LEVELS 8

/* s0's frames: dive, then exit to main from the bottom, abandoning them. */
static int reuse_dive_a(int level)
{
    uint64_t buf[20];

    test_fill(buf, 20, 0x1900 + (uint64_t)level);
    if (level + 1 < REUSE_LEVELS) {
        int rc = reuse_dive_a(level + 1);
        if (rc != 0)
            return rc;
    } else {
        stl_exit(&W.t, &W.main);
    }
    TEST_CHECK(!"stl_exit returned", 1901);
    TEST_CHECK(test_holds(buf, 20, 0x1900 + (uint64_t)level), 1903);
    return 0;
}

/* s1's frames, of another size, over the same bytes. */
static int reuse_dive_b(int level)
{
    uint64_t buf[52];

    test_fill(buf, 52, 0x1910 + (uint64_t)level);
    if (level + 1 < REUSE_LEVELS) {
        int rc = reuse_dive_b(level + 1);
        if (rc != 0)
            return rc;
    }
    TEST_CHECK(test_holds(buf, 52, 0x1910 + (uint64_t)level), 1902);
    return 0;
}

static void reuse_entry(void *arg)
{
    test_exit_to_main(IDX(arg) == 0 ? reuse_dive_a(0) : reuse_dive_b(0));
}

/*
 * s0 dives 8 frames and exits from the bottom; main then starts s1, whose
 * frames of another layout cover the same bytes.  Natively trivial; under
 * AddressSanitizer it fails if the redzones of s0's abandoned frames are
 * still poisoned when s1 writes its locals there.
 */
int test_dead_window_reuse(void)
{
    TEST_CHECK(stl_start(&W.t, &W.s[0], reuse_entry, ARG(0)) == STL_OK, 1910);
    TEST_RESUMED();
    TEST_CHECK(stl_stack_dead(&W.s[0]), 1911);
    TEST_CHECK(stl_start(&W.t, &W.s[1], reuse_entry, ARG(1)) == STL_OK, 1912);
    TEST_RESUMED();
    TEST_CHECK(stl_stack_dead(&W.s[1]), 1913);
    return 0;
}

/* ---- random switch graphs ---------------------------------------------- */

#define RG_STACKS 8             /* node RG_STACKS is the main stack */
#define RG_SEEDS 4
#define RG_BUDGET 3000
#define RG_MAX_DEPTH 10

static long rg_steps;
static long rg_total;
static int rg_depth[RG_STACKS + 1];
static uint64_t rg_key[RG_STACKS + 1][RG_MAX_DEPTH + 1];

static void rg_entry(void *arg);

static stl_stack *rg_node(int n)
{
    return n == RG_STACKS ? &W.main : &W.s[n];
}

/*
 * One random switch from node `me`.  Self and dead targets must give
 * STL_EINVAL; an unstarted one must refuse stl_switch and then be started.
 */
static int rg_switch(int me)
{
    int to = (int)test_rng_below(RG_STACKS + 1);
    stl_stack *target = rg_node(to);
    int rc;

    rg_steps++;
    if (to == me || stl_stack_dead(target)) {
        TEST_CHECK(stl_switch(&W.t, target) == STL_EINVAL, 1201);
        return 0;
    }
    if (!stl_stack_active(target)) {
        TEST_CHECK(stl_switch(&W.t, target) == STL_EINVAL, 1202);
        rc = stl_start(&W.t, target, rg_entry, ARG(to));
    } else {
        rc = stl_switch(&W.t, target);
    }
    TEST_CHECK(rc == STL_OK, 1203);
    if (test_failed())
        return test_failed();
    TEST_CHECK(test_quiet(rg_node(me)), 1204);
    return 0;
}

/*
 * Node `me` finishes from whatever depth it is at: stl_exit to a random
 * live node or stl_exit_start of an unstarted one.  Returns only on failure.
 */
static int rg_exit(int me)
{
    for (;;) {
        int to = (int)test_rng_below(RG_STACKS + 1);
        stl_stack *target = rg_node(to);

        if (to == me || stl_stack_dead(target)) {
            TEST_CHECK(stl_exit(&W.t, target) == STL_EINVAL, 1210);
            TEST_CHECK(test_quiet(rg_node(me)) && stl_stack_active(rg_node(me)), 1211);
            continue;
        }
        rg_steps++;
        if (stl_stack_active(target))
            stl_exit(&W.t, target);
        else
            stl_exit_start(&W.t, target, rg_entry, ARG(to));
        return test_fail(1212, "stl_exit/stl_exit_start returned", __FILE__, __LINE__);
    }
}

/*
 * A frame of node `me` at `depth`: a buffer of random size and key, checked
 * (with the node's depth and the key, both mirrored off the stack) after
 * every action.  Actions: switch, go deeper, return, or exit the node.
 * When the budget is spent every frame returns, so every node unwinds.
 */
static int rg_frame(int me, int depth)
{
    size_t n = 4 + test_rng_below(60);
    uint64_t buf[n];
    uint64_t key = test_rng();
    int rc = 0;

    rg_key[me][depth] = key;
    rg_depth[me] = depth;
    test_fill(buf, n, key);
    for (;;) {
        TEST_CHECK(test_holds(buf, n, key), 1220);
        TEST_CHECK(rg_depth[me] == depth && rg_key[me][depth] == key, 1221);
        if (rg_steps >= RG_BUDGET)
            return 0;
        unsigned action = test_rng_below(10);
        if (action < 5)
            rc = rg_switch(me);
        else if (action < 7 && depth < RG_MAX_DEPTH)
            rc = rg_frame(me, depth + 1);
        else if (action < 9 && depth > 0)
            return 0;
        else if (action == 9 && me != RG_STACKS)
            rc = rg_exit(me);
        if (rc != 0)
            return rc;
        rg_depth[me] = depth;
    }
}

static void rg_entry(void *arg)
{
    test_exit_to_main(rg_frame(IDX(arg), 0));
}

/* One graph: main joins in as a node, then resumes every live stack so that
 * each unwinds and exits. */
static int rg_run(uint64_t seed)
{
    int rc;

    test_rng_seed(seed);
    rg_steps = 0;
    if ((rc = rg_frame(RG_STACKS, 0)) != 0)
        return rc;
    for (int i = 0; i < RG_STACKS; i++)
        while (stl_stack_active(&W.s[i])) {
            TEST_CHECK(stl_switch(&W.t, &W.s[i]) == STL_OK, 1230);
            TEST_RESUMED();
        }
    for (int i = 0; i < RG_STACKS; i++)
        TEST_CHECK(!stl_stack_active(&W.s[i]), 1231);
    TEST_CHECK(test_quiet(&W.main), 1232);
    rg_total += rg_steps;
    return 0;
}

/*
 * RG_SEEDS random graphs over RG_STACKS stacks and main, RG_BUDGET switches
 * each.  The value is the number of switches, starts and exits made.
 */
int test_random_graph(void)
{
    rg_total = 0;
    for (uint64_t seed = 1; seed <= RG_SEEDS; seed++) {
        int rc;
        test_world_release();
        test_world_init();
        if ((rc = rg_run(seed * 0x1000193)) != 0)
            return rc;
    }
    test_set_value(rg_total);
    return 0;
}

/* ---- callee-saved registers -------------------------------------------- */

#define REG_ROUNDS 2000
#define REG_INTS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
#define REG_DBLS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9)

static volatile uint64_t reg_salt = 0x5bd1e995;
static uint64_t reg_int_mem[2][14];
static double reg_dbl_mem[2][10];
static int reg_direct;          /* switch through the routine itself */
static int reg_base;            /* 1300 or 2000: the codes of this run */

/* The routine (contract in switch_arch.h); hidden, but linked in with us. */
int stl__stack_switch(stl_thread *t);

/*
 * stl_switch, or the bare routine with what stl_switch does around it.
 * The C wrappers save some callee-saved registers in their own frames (at
 * -O2 gcc's stl_switch keeps `t` in rbx), which would hide a routine that
 * forgot them; inlined, so nothing stands between the routine and the
 * registers of regs_body.
 */
static inline __attribute__((always_inline)) int regs_switch(stl_stack *to)
{
    if (!reg_direct)
        return stl_switch(&W.t, to);
    W.t.target = to;
    return stl__stack_switch(&W.t) == 0 ? STL_OK : STL_ENOMEM;
}

static int regs_body(int id);

static void regs_entry(void *arg)
{
    int id = IDX(arg);
    int rc = regs_body(id);

    if (rc == 0 && id == 0) {       /* let s1 finish its last round, then go */
        if (stl_switch(&W.t, &W.s[1]) != STL_OK || !stl_stack_dead(&W.s[1]))
            rc = test_fail(reg_base + 1, "s1 finished", __FILE__, __LINE__);
    }
    test_exit_to(id == 0 ? &W.main : &W.s[0], rc);
}

/*
 * Fourteen integers and ten doubles, live across every switch, so the
 * compiler keeps them in callee-saved registers (and spills the rest into
 * the frame).  Their expected values are mirrored in memory; the other stack
 * runs this same code with other values in the same registers.
 */
static int regs_body(int id)
{
    stl_stack *other = &W.s[1 - id];
#define DECL_I(k) uint64_t i##k = test_mix((uint64_t)id * 100 + k);
#define DECL_D(k) double d##k = (double)(id * 100 + k) + 0.25;
    REG_INTS(DECL_I)
    REG_DBLS(DECL_D)

    for (int r = 0; r < REG_ROUNDS; r++) {
        uint64_t salt = reg_salt;
#define STEP_I(k) i##k = i##k * 6364136223846793005ULL + salt + k; reg_int_mem[id][k] = i##k;
#define STEP_D(k) d##k = d##k * 0.5 + (double)(salt & 0xff) + k; reg_dbl_mem[id][k] = d##k;
        REG_INTS(STEP_I)
        REG_DBLS(STEP_D)
        int rc = (id == 0 && r == 0) ? stl_start(&W.t, other, regs_entry, ARG(1))
                                     : regs_switch(other);
        TEST_CHECK(rc == STL_OK, reg_base + 2);
        int bad = 0;
#define CHECK_I(k) bad |= i##k != reg_int_mem[id][k];
#define CHECK_D(k) bad |= d##k != reg_dbl_mem[id][k];
        REG_INTS(CHECK_I)
        TEST_CHECK(!bad, reg_base + 3);
        REG_DBLS(CHECK_D)
        TEST_CHECK(!bad, reg_base + 4);
    }
    return 0;
}

/* main starts s0, which starts s1; both run regs_body and exit in turn. */
static int regs_run(int direct, int base)
{
    reg_direct = direct;
    reg_base = base;
    TEST_CHECK(stl_start(&W.t, &W.s[0], regs_entry, ARG(0)) == STL_OK, base + 10);
    TEST_RESUMED();
    TEST_CHECK(stl_stack_dead(&W.s[0]) && stl_stack_dead(&W.s[1]), base + 11);
    return 0;
}

/* s0 and s1 alternate REG_ROUNDS times with many values live in each. */
int test_callee_saved(void)
{
    return regs_run(0, 1300);
}

/* The same, switching through the bare routine (see regs_switch). */
int test_callee_saved_routine(void)
{
    return regs_run(1, 2000);
}

/* ---- floating-point control state --------------------------------------- */

#define FP_NODES 4              /* s0, s1, s2 and main (node 3) */
#define FP_ROUNDS 50

static const int fp_mode[FP_NODES] = {FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO, FE_TONEAREST};
static unsigned fp_bits[FP_NODES];
static double fp_ref[FP_NODES];
static long double fp_ref_ld[FP_NODES];
static int fp_arith, fp_arith_ld;   /* do the modes change 1/3? */
static int fp_stop;

/*
 * The rounding fields as the hardware holds them: MXCSR.RC and the x87
 * control word's RC on x86-64, FPCR.RMode on aarch64.
 */
static unsigned fp_hw_bits(void)
{
#if defined(__x86_64__)
    unsigned mxcsr;
    unsigned short cw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    return (((mxcsr >> 13) & 3u) << 2) | ((cw >> 10) & 3u);
#elif defined(__aarch64__)
    unsigned long fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return (unsigned)(fpcr >> 22) & 3u;
#else
    return 0;
#endif
}

/* 1/3 in double (SSE or the FPU) and in long double (x87 on x86-64). */
static TEST_NOINLINE double fp_third(void)
{
    volatile double one = 1.0, three = 3.0;
    return one / three;
}

static TEST_NOINLINE long double fp_third_ld(void)
{
    volatile long double one = 1.0L, three = 3.0L;
    return one / three;
}

/*
 * 1 if node n's rounding mode is in force, by every measure we have: the C
 * library's view, the hardware fields, and (where the machine honours the
 * modes in arithmetic: Valgrind's x86-64 emulation does not) 1/3 itself.
 */
static int fp_is(int n)
{
    if (fegetround() != fp_mode[n] || fp_hw_bits() != fp_bits[n])
        return 0;
    if (fp_arith && fp_third() != fp_ref[n])
        return 0;
#if defined(__x86_64__)
    if (fp_arith_ld && fp_third_ld() != fp_ref_ld[n])
        return 0;
#endif
    return 1;
}

static void fp_entry(void *arg);

/* Passes control round robin: s0 -> s1 -> s2 -> main -> s0. */
static int fp_next(int n)
{
    stl_stack *to = (n + 1 == 3) ? &W.main : &W.s[n + 1];

    if (stl_stack_active(to))
        return stl_switch(&W.t, to);
    return stl_start(&W.t, to, fp_entry, ARG(n + 1));
}

/* Stack n: check the inherited mode, set its own, pass control until fp_stop. */
static int fp_body(int n)
{
    TEST_CHECK(fp_is(n > 0 ? n - 1 : 3), 1401);     /* started in the starter's mode */
    TEST_CHECK(fesetround(fp_mode[n]) == 0, 1402);
    TEST_CHECK(fp_is(n), 1403);
    while (!fp_stop) {
        TEST_CHECK(fp_next(n) == STL_OK, 1404);
        TEST_CHECK(fp_is(n), 1405);
    }
    return 0;
}

static void fp_entry(void *arg)
{
    test_exit_to_main(fp_body(IDX(arg)));
}

/* Measures each mode's bits and results on main, back in round-to-nearest. */
static int fp_measure(void)
{
    for (int n = 0; n < FP_NODES; n++) {
        TEST_CHECK(fesetround(fp_mode[n]) == 0, 1410);
        fp_bits[n] = fp_hw_bits();
        fp_ref[n] = fp_third();
        fp_ref_ld[n] = fp_third_ld();
    }
    TEST_CHECK(fegetround() == FE_TONEAREST, 1411);
    for (int n = 1; n < FP_NODES; n++)             /* the fields really differ */
        TEST_CHECK(fp_bits[n] != fp_bits[0], 1412);
    fp_arith = fp_ref[0] != fp_ref[1];
    fp_arith_ld = fp_ref_ld[0] != fp_ref_ld[1];
    return 0;
}

/*
 * s0, s1 and s2 each set their own rounding mode (main keeps
 * round-to-nearest) and pass control round robin FP_ROUNDS times; after
 * every resume each finds its own mode.  A fresh stack starts in its
 * starter's mode; a stack that exits leaves main's mode intact.
 */
int test_fp_control(void)
{
    int rc;

    fp_stop = 0;
    if ((rc = fp_measure()) != 0)
        return rc;
    for (int r = 0; r < FP_ROUNDS; r++) {
        TEST_CHECK(fp_next(-1) == STL_OK, 1420);
        TEST_RESUMED();
        TEST_CHECK(fp_is(3), 1421);
    }
    fp_stop = 1;
    for (int n = 0; n < 3; n++) {
        TEST_CHECK(stl_switch(&W.t, &W.s[n]) == STL_OK, 1422);
        TEST_RESUMED();
        TEST_CHECK(stl_stack_dead(&W.s[n]) && fp_is(3), 1423);
    }
    return 0;
}
