/*
 * test_harness.c -- the table of scenarios and the two ways to run one: in
 * this process, or in a forked child with a timeout, so that a core bug that
 * hangs or corrupts the stack fails one scenario instead of the whole run
 * (and a Valgrind or sanitizer error in the child fails it too).
 */
#include "switch_scenarios.h"
#include "test_util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct test_scenario {
    const char *name;
    int (*fn)(void);
    const char *unit;           /* what the measured value means, or NULL */
} test_scenario;

/* Order fixes the codes: the n-th entry (from 1) fails with n*100+k. */
static const test_scenario scenarios[] = {
    {"states", test_states, NULL},
    {"einval", test_einval, NULL},
    {"exit_to_parent", test_exit_to_parent, NULL},
    {"exit_start_chain", test_exit_start_chain, "bytes of C stack per exit_start link"},
    {"ping_pong", test_ping_pong, NULL},
    {"ping_pong_main", test_ping_pong_main, NULL},
    {"nested_chain", test_nested_chain, NULL},
    {"spill_shallow", test_spill_shallow, "bytes spilled for a shallow suspended stack"},
    {"resume_grandchild", test_resume_grandchild, NULL},
    {"exit_to_child", test_exit_to_child, NULL},
    {"deep_recursion", test_deep_recursion, "bytes in the largest spill"},
    {"random_graph", test_random_graph, "switches, starts and exits made"},
    {"callee_saved", test_callee_saved, NULL},
    {"fp_control", test_fp_control, NULL},
    {"steady_state_no_alloc", test_steady_state_no_alloc, "reallocs during warm-up, none after"},
    {"enomem_retry", test_enomem_retry, NULL},
    {"enomem_partial", test_enomem_partial, NULL},
    {"enomem_exit", test_enomem_exit, NULL},
    {"dead_window_reuse", test_dead_window_reuse, NULL},
    {"callee_saved_routine", test_callee_saved_routine, NULL},
};

#define N_SCENARIOS ((int)(sizeof scenarios / sizeof scenarios[0]))

int stl_test_count(void)
{
    return N_SCENARIOS;
}

const char *stl_test_name(int i)
{
    return (i >= 0 && i < N_SCENARIOS) ? scenarios[i].name : NULL;
}

const char *stl_test_unit(int i)
{
    return (i >= 0 && i < N_SCENARIOS) ? scenarios[i].unit : NULL;
}

/* A harness verdict: the code and one formatted line. */
static int test_result(stl_test_result *r, int code, const char *fmt, long arg)
{
    r->code = code;
    snprintf(r->what, sizeof r->what, fmt, arg);
    return code;
}

/*
 * A fresh world, the scenario, its buffers freed.  A failure recorded by a
 * stack counts even if main's code did not look for it.
 */
int stl_test_run(int i, stl_test_result *r)
{
    memset(r, 0, sizeof *r);
    if (i < 0 || i >= N_SCENARIOS)
        return test_result(r, STL_TEST_NOSUCH, "no scenario %ld", i);
    test_world_init();
    int rc = scenarios[i].fn();
    r->code = rc ? rc : test_failed();
    r->value = test_value();
    if (r->code != 0)
        snprintf(r->what, sizeof r->what, "%s", test_failure_text());
    test_world_release();
    return r->code;
}

/* Reads up to n bytes; fewer means the child died before reporting. */
static size_t test_read_all(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    return got;
}

/* The child: default SIGALRM (the parent may have a handler, e.g. pytest's),
 * the scenario, its result down the pipe. */
static void test_child(int i, unsigned timeout_s, int fd)
{
    stl_test_result r;
    sigset_t set;

    signal(SIGALRM, SIG_DFL);
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    alarm(timeout_s);
    stl_test_run(i, &r);
    const char *p = (const char *)&r;
    size_t left = sizeof r;
    while (left > 0) {
        ssize_t k = write(fd, p, left);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        p += k;
        left -= (size_t)k;
    }
    _exit(r.code == 0 ? 0 : 1);
}

/* Turns the child's wait status and what it sent into the result. */
static int test_judge(stl_test_result *r, size_t got, int status, unsigned timeout_s)
{
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (sig == SIGALRM)
            return test_result(r, STL_TEST_TIMEOUT, "no result after %ld s (hang?)", (long)timeout_s);
        return test_result(r, STL_TEST_SIGNAL + sig, "killed by signal %ld", sig);
    }
    int st = WIFEXITED(status) ? WEXITSTATUS(status) : 255;
    if (got != sizeof *r)
        return test_result(r, STL_TEST_STATUS + st, "exited with status %ld before reporting", st);
    if ((r->code == 0) != (st == 0))
        return test_result(r, STL_TEST_STATUS + st,
                           "passed, but the child exited with status %ld "
                           "(a Valgrind or sanitizer error?)", st);
    return r->code;
}

/*
 * Forks; the child runs scenario i and sends its result through a pipe;
 * the parent reads it, reaps the child and judges both.
 */
int stl_test_run_isolated(int i, unsigned timeout_s, stl_test_result *r)
{
    int fds[2];
    int status;

    memset(r, 0, sizeof *r);
    if (i < 0 || i >= N_SCENARIOS)
        return test_result(r, STL_TEST_NOSUCH, "no scenario %ld", i);
    if (pipe(fds) != 0)
        return test_result(r, STL_TEST_NOCHILD, "pipe: errno %ld", errno);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return test_result(r, STL_TEST_NOCHILD, "fork: errno %ld", errno);
    }
    if (pid == 0) {
        close(fds[0]);
        test_child(i, timeout_s, fds[1]);
    }
    close(fds[1]);
    size_t got = test_read_all(fds[0], r, sizeof *r);
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return test_result(r, STL_TEST_NOCHILD, "waitpid: errno %ld", errno);
    return test_judge(r, got, status, timeout_s);
}
