/* SPDX-License-Identifier: MIT */
/*
 * iomux/export.h - what every public header wraps its declarations in.
 *
 * The library is compiled with -fvisibility=hidden, so only what is
 * declared between IOMUX_BEGIN_DECLS and IOMUX_END_DECLS is exported from
 * the shared library: the public API and nothing else (iomux__ internals
 * stay hidden). Wrapping whole headers, rather than marking each function,
 * means a new public function cannot be forgotten.
 */
#ifndef IOMUX_EXPORT_H
#define IOMUX_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define IOMUX_VISIBILITY_PUSH _Pragma("GCC visibility push(default)")
#define IOMUX_VISIBILITY_POP  _Pragma("GCC visibility pop")
#else
#define IOMUX_VISIBILITY_PUSH
#define IOMUX_VISIBILITY_POP
#endif

#ifdef __cplusplus
#define IOMUX_BEGIN_DECLS                                                                          \
    extern "C" {                                                                                   \
    IOMUX_VISIBILITY_PUSH
#define IOMUX_END_DECLS                                                                            \
    IOMUX_VISIBILITY_POP                                                                           \
    }
#else
#define IOMUX_BEGIN_DECLS IOMUX_VISIBILITY_PUSH
#define IOMUX_END_DECLS   IOMUX_VISIBILITY_POP
#endif

#endif /* IOMUX_EXPORT_H */
