/*
 * switch_arch.h -- selects the register-switch routine for this platform.
 *
 * Each routine lives in arch/<name>.S and implements one contract:
 *
 *     int stl__stack_switch(stl_thread *t);
 *
 *  1. push every callee-saved register and the floating-point control state;
 *  2. sp' = stl__stack_save(t, sp):  0 -> failure: pop, return -1;
 *                                    1 -> fresh target: call stl__stack_enter(t)
 *                                         on the current sp (it never returns);
 *                                    else the target's saved stack pointer;
 *  3. sp = sp'; stl__stack_restore(t); pop (now the target's registers); return 0.
 *
 * The routine keeps `t` in a callee-saved register across the two calls.
 */
#ifndef STL_SWITCH_ARCH_H
#define STL_SWITCH_ARCH_H

#if defined(__x86_64__) && !defined(_WIN32)
#  define STL_ARCH_NAME "x86_64_sysv"
#elif defined(__aarch64__) && !defined(_WIN32)
#  define STL_ARCH_NAME "aarch64_aapcs64"
#else
#  error "stolon: no stack-switch routine for this platform (csrc/switch/arch/)"
#endif

#define STL_ARCH_NAME_STR STL_ARCH_NAME

#endif /* STL_SWITCH_ARCH_H */
