/*
 * selftest_main.c -- runs the switch-core scenarios without Python.
 *
 *     selftest [-n] [-t SECONDS] [NAME...]
 *
 * Each scenario runs in a forked child killed after SECONDS (default 60);
 * -n runs them in this process instead (for a debugger).  Prints one line
 * per scenario and a closing "N passed, N failed"; exits 1 on any failure.
 */
#include "switch_scenarios.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 if scenario i is selected by the names on the command line (or none). */
static int test_selected(int i, int argc, char **argv, int first)
{
    if (first >= argc)
        return 1;
    for (int a = first; a < argc; a++)
        if (strcmp(argv[a], stl_test_name(i)) == 0)
            return 1;
    return 0;
}

/* One line: verdict, number, name, then the measurement or the failure. */
static void test_print(int i, const stl_test_result *r)
{
    const char *unit = stl_test_unit(i);

    if (r->code == 0 && unit != NULL)
        printf("ok   %2d %-22s %ld %s\n", i + 1, stl_test_name(i), r->value, unit);
    else if (r->code == 0)
        printf("ok   %2d %s\n", i + 1, stl_test_name(i));
    else
        printf("FAIL %2d %-22s code %d: %s\n", i + 1, stl_test_name(i), r->code, r->what);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int in_process = 0, first = 1, passed = 0, failed = 0;
    unsigned timeout_s = 60;

    while (first < argc && argv[first][0] == '-') {
        if (strcmp(argv[first], "-n") == 0) {
            in_process = 1;
        } else if (strcmp(argv[first], "-t") == 0 && first + 1 < argc) {
            timeout_s = (unsigned)strtoul(argv[++first], NULL, 10);
        } else {
            fprintf(stderr, "usage: %s [-n] [-t SECONDS] [NAME...]\n", argv[0]);
            return 2;
        }
        first++;
    }
    for (int i = 0; i < stl_test_count(); i++) {
        stl_test_result r;
        if (!test_selected(i, argc, argv, first))
            continue;
        if (in_process)
            stl_test_run(i, &r);
        else
            stl_test_run_isolated(i, timeout_s, &r);
        test_print(i, &r);
        if (r.code == 0)
            passed++;
        else
            failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return (failed == 0 && passed > 0) ? 0 : 1;
}
