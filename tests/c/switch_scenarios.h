/*
 * switch_scenarios.h -- the C-level scenarios of the switch core
 * (csrc/switch/), as a table that selftest_main.c and test_switch_core.py
 * (through cffi) both run.
 *
 * A scenario returns 0 on success or a code that names the check that
 * failed (scenario n uses n*100+1 ... n*100+99); the harness adds the codes
 * below for children that hang, crash or vanish.
 */
#ifndef STL_TEST_SCENARIOS_H
#define STL_TEST_SCENARIOS_H

#define STL_TEST_TIMEOUT 9000   /* the child did not finish in time */
#define STL_TEST_SIGNAL 9100    /* + signal number: the child was killed */
#define STL_TEST_STATUS 9300    /* + exit status: the child exited without a result,
                                 * or with a status that contradicts it (a tool's error) */
#define STL_TEST_NOCHILD 9500   /* fork or pipe failed */
#define STL_TEST_NOSUCH 9600    /* no scenario with that index */
#define STL_TEST_EXIT_FAILED 9700 /* a stack's final stl_exit returned */

typedef struct stl_test_result {
    int code;          /* 0 or the failure code */
    long value;        /* what the scenario measured, if it has a unit */
    char what[240];    /* the failed check: "file:line: expression" */
} stl_test_result;

int stl_test_count(void);
const char *stl_test_name(int i);
/* What stl_test_result.value means for scenario i, or NULL. */
const char *stl_test_unit(int i);
/* Runs scenario i in this process. */
int stl_test_run(int i, stl_test_result *r);
/* Runs scenario i in a forked child that is killed after timeout_s seconds. */
int stl_test_run_isolated(int i, unsigned timeout_s, stl_test_result *r);

#endif /* STL_TEST_SCENARIOS_H */
