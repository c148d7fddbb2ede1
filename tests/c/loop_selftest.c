/*
 * loop_selftest.c -- the loop scenarios without Python: every scenario on
 * every backend this build has, each in a forked child with a timeout.  run_loop_valgrind.sh
 * runs this under Valgrind.
 *
 *   loop_selftest [-t SECONDS] [-s DIVISOR] [-b epoll|poll|kqueue] [NAME...]
 *
 * -s divides the sizes of the big scenarios (a million timers, 10,000 fds)
 * so that they stay quick under Valgrind.  Exit status: 0 if all passed.
 */
#include "loop_tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int wanted(const char *name, int argc, char **argv, int first)
{
    if (first >= argc)
        return 1;
    for (int i = first; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    unsigned timeout = 30;
    unsigned backends[3], all = stl_loop_supported_backends();
    const char *names[3];
    int nb = 0, arg = 1, failed = 0, ran = 0;

    static const struct { unsigned bit; const char *name; } known[] = {
        {STL_BACKEND_EPOLL, "epoll"}, {STL_BACKEND_POLL, "poll"}, {STL_BACKEND_KQUEUE, "kqueue"},
    };
    for (int k = 0; k < 3; k++) {
        if (all & known[k].bit) {
            backends[nb] = known[k].bit;
            names[nb++] = known[k].name;
        }
    }

    for (; arg < argc && argv[arg][0] == '-'; arg += 2) {
        if (arg + 1 >= argc)
            break;
        if (strcmp(argv[arg], "-t") == 0)
            timeout = (unsigned)atoi(argv[arg + 1]);
        else if (strcmp(argv[arg], "-s") == 0)
            tl_set_scale(atoi(argv[arg + 1]));
        else if (strcmp(argv[arg], "-b") == 0) {
            for (int k = 0; k < nb; k++) {
                if (strcmp(argv[arg + 1], names[k]) == 0) {
                    backends[0] = backends[k];
                    names[0] = names[k];
                    nb = 1;
                    break;
                }
            }
        }
    }
    for (int i = 0; i < tl_count(); i++) {
        if (!wanted(tl_name(i), argc, argv, arg))
            continue;
        for (int b = 0; b < nb; b++) {
            tl_result r;
            int rc = tl_run_isolated(i, backends[b], timeout, &r);
            ran++;
            if (rc) {
                failed++;
                printf("FAIL %-34s %-5s code %d: %s\n", tl_name(i), names[b], rc, r.what);
            } else {
                printf("ok   %-34s %-5s value %ld\n", tl_name(i), names[b], r.value);
            }
            fflush(stdout);
        }
    }
    printf("%d run, %d failed\n", ran, failed);
    return failed ? 1 : 0;
}
