/*
 * test_alloc.h -- the counting realloc that the tests build switch.c with:
 *
 *     -DSTL_REALLOC=stl_test_realloc -include tests/c/test_alloc.h
 *
 * switch.c sends every growth of a spill buffer through STL_REALLOC (and
 * frees with plain free), so counting calls here counts the core's
 * allocations, and failing a call here injects ENOMEM into a switch.
 */
#if !defined(STL_TEST_ALLOC_H) && !defined(__ASSEMBLER__)   /* also -include'd into .S */
#define STL_TEST_ALLOC_H

#include <stddef.h>

void *stl_test_realloc(void *p, size_t n);

#endif /* STL_TEST_ALLOC_H */
