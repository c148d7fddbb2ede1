/*
 * AArch64 AAPCS64 register switch (Linux ELF and macOS Mach-O).
 * Contract: csrc/switch/switch_arch.h.  Callee-saved: x19-x28, x29 (FP),
 * x30 (LR), the low halves of v8-v15 (d8-d15); FPCR is kept too, as the
 * x86-64 routine keeps MXCSR.  x18 is the platform register: never touched.
 */
#if defined(__APPLE__)
#  define SYM(name) _##name
#else
#  define SYM(name) name
#endif

        .text
        .globl SYM(stl__stack_switch)
#if defined(__APPLE__)
        .private_extern SYM(stl__stack_switch)
#else
        .hidden stl__stack_switch
        .type stl__stack_switch, %function
#endif
        .p2align 4
SYM(stl__stack_switch):
        stp     x29, x30, [sp, #-176]!
        mov     x29, sp
        stp     x19, x20, [sp, #16]
        stp     x21, x22, [sp, #32]
        stp     x23, x24, [sp, #48]
        stp     x25, x26, [sp, #64]
        stp     x27, x28, [sp, #80]
        stp     d8,  d9,  [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mrs     x9, fpcr
        str     x9, [sp, #160]

        mov     x19, x0             /* t survives both calls in x19 */
        mov     x1, sp
        bl      SYM(stl__stack_save)
        cbz     x0, 1f
        cmp     x0, #1
        b.eq    2f

        mov     sp, x0              /* now on the target's stack */
        mov     x0, x19
        bl      SYM(stl__stack_restore)
        mov     w0, #0
        b       3f

2:      mov     x0, x19             /* fresh target: run its entry right here */
        bl      SYM(stl__stack_enter)
        brk     #0                  /* stl__stack_enter never returns */

1:      mov     w0, #-1
3:      ldr     x9, [sp, #160]
        msr     fpcr, x9
        ldp     d14, d15, [sp, #144]
        ldp     d12, d13, [sp, #128]
        ldp     d10, d11, [sp, #112]
        ldp     d8,  d9,  [sp, #96]
        ldp     x27, x28, [sp, #80]
        ldp     x25, x26, [sp, #64]
        ldp     x23, x24, [sp, #48]
        ldp     x21, x22, [sp, #32]
        ldp     x19, x20, [sp, #16]
        ldp     x29, x30, [sp], #176
        ret
#if !defined(__APPLE__)
        .size stl__stack_switch, .-stl__stack_switch
        .section .note.GNU-stack,"",%progbits
#endif
