/* The AVX2 path of ffcvx's resize kernels (internal to resize_kernels.c).
 *
 * resize_kernels_avx2.c holds the weight-packing functions, which are
 * portable C, and the AVX2 passes, compiled with the avx2 target attribute
 * only (no -mavx2 flag) so the rest of the extension runs on any x86-64.
 * Off x86-64, or with a compiler without that attribute,
 * ffcvx_rk_have_avx2() is 0 and the passes are empty stubs never called.
 * The passes compute exactly what the portable loops compute. */
#ifndef FFCVX_RESIZE_KERNELS_AVX2_H
#define FFCVX_RESIZE_KERNELS_AVX2_H

#include <stdint.h>

#include "resize_kernels.h"

/* Fractional bits of the int16 filter weights (shared by both passes). */
#define FFCVX_RK_COEF_BITS 14

/* 1 when the CPU running this has AVX2 (and it was compiled in), else 0. */
FFCVX_RK_HIDDEN int ffcvx_rk_have_avx2(void);

/* Weights of one axis for ffcvx_rk_horizontal_avx2 (RGB): windows of the
 * fewest 4-tap chunks the widest output needs (at most `chunks`), moved
 * left where they would pass the row end (the extra leading taps weigh 0).
 * Writes lo[out_size] and pack[out_size][used][16]; returns `used`, or 0
 * when the row is narrower than one window (use the portable loop). */
FFCVX_RK_HIDDEN int64_t ffcvx_rk_pack_rgb(int64_t in_size, int64_t out_size, int64_t taps,
                                          const int32_t *bounds, const int16_t *coef,
                                          int64_t chunks, int32_t *lo, int16_t *pack);

/* Weights and shuffle masks for ffcvx_rk_horizontal_gray_avx2; sets *loads
 * (1 or 2 16-byte loads per lane and chunk). Returns the chunks used, or 0
 * when that kernel cannot run here (use the portable loop). The block
 * layout is described in resize_kernels_avx2.c. */
FFCVX_RK_HIDDEN int64_t ffcvx_rk_pack_gray(int64_t in_size, int64_t out_size, int64_t taps,
                                           const int32_t *bounds, const int16_t *coef,
                                           int64_t chunks, int32_t *lo, uint8_t *pack,
                                           int64_t *loads);

/* Vertical pass over rows of n >= 32 bytes. */
FFCVX_RK_HIDDEN void ffcvx_rk_vertical_avx2(const uint8_t *src, int64_t src_stride, int64_t n,
                                            uint8_t *dst, int64_t dst_stride, int64_t dst_h,
                                            const int32_t *bounds, const int16_t *coef,
                                            int64_t taps);

/* Horizontal pass over RGB rows with the tables of ffcvx_rk_pack_rgb. */
FFCVX_RK_HIDDEN void ffcvx_rk_horizontal_avx2(const uint8_t *src, int64_t src_stride,
                                              int64_t rows, const uint8_t *last_row,
                                              uint8_t *dst, int64_t dst_w, const int32_t *lo,
                                              const int16_t *pack, int64_t nchunks);

/* Horizontal pass over one-channel rows with the tables of ffcvx_rk_pack_gray. */
FFCVX_RK_HIDDEN void ffcvx_rk_horizontal_gray_avx2(const uint8_t *src, int64_t src_stride,
                                                   int64_t rows, const uint8_t *last_row,
                                                   uint8_t *dst, int64_t dst_w,
                                                   const uint8_t *pack, int64_t nchunks,
                                                   int64_t loads);

#endif /* FFCVX_RESIZE_KERNELS_AVX2_H */
