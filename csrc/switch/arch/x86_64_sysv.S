/*
 * x86-64 System V register switch (Linux ELF and macOS Mach-O).
 * Contract: csrc/switch/switch_arch.h.  Callee-saved: rbx, rbp, r12-r15,
 * the MXCSR control bits and the x87 control word.
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
        .type stl__stack_switch, @function
#endif
        .p2align 4
SYM(stl__stack_switch):
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp            /* FP control slot; rsp is now 16-aligned */
        stmxcsr (%rsp)
        fnstcw  4(%rsp)

        movq    %rdi, %r12          /* t survives both calls in r12 */
        movq    %rsp, %rsi
        call    SYM(stl__stack_save)
        testq   %rax, %rax
        jz      1f
        cmpq    $1, %rax
        je      2f

        movq    %rax, %rsp          /* now on the target's stack */
        movq    %r12, %rdi
        call    SYM(stl__stack_restore)
        xorl    %eax, %eax
        jmp     3f

2:      movq    %r12, %rdi          /* fresh target: run its entry right here */
        call    SYM(stl__stack_enter)
        ud2                         /* stl__stack_enter never returns */

1:      movl    $-1, %eax
3:      ldmxcsr (%rsp)
        fldcw   4(%rsp)
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
#if !defined(__APPLE__)
        .size stl__stack_switch, .-stl__stack_switch
        .section .note.GNU-stack,"",@progbits
#endif
