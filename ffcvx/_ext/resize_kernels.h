/* Antialiased RGB and one-channel resize kernels of ffcvx (C99).
 *
 * Separable resampling with a triangle (bilinear) filter whose support
 * widens with the downscale factor, in fixed point: 14-bit int16 weights,
 * int32 sums, rounding by adding half, saturation to 0..255. The vertical
 * pass runs first and its output is rounded to uint8. On x86-64 CPUs with
 * AVX2 both passes run as vpmaddwd kernels (chosen at run time); elsewhere
 * portable loops run, with bit-identical results.
 *
 * ffcvx/_ext/resize.pyx is the binding: it exports these as the `cdef api`
 * functions ffcvx_resize_rgb, ffcvx_resize_gray, their _mirror forms and
 * the scratch-size functions, and as the Python functions resize_rgb,
 * resize_gray and resize_scratch_bytes.
 *
 * Nothing here allocates memory, takes a lock or keeps state between calls:
 * every function may run on many threads at once with distinct scratch
 * buffers. */
#ifndef FFCVX_RESIZE_KERNELS_H
#define FFCVX_RESIZE_KERNELS_H

#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define FFCVX_RK_HIDDEN __attribute__((visibility("hidden")))
#else
#define FFCVX_RK_HIDDEN
#endif

/* Status codes, the decoder backends' convention. */
enum {
    FFCVX_RESIZE_OK = 0,
    FFCVX_RESIZE_SCRATCH_TOO_SMALL = -2,
    FFCVX_RESIZE_BAD_ARGUMENT = -3
};

/* Bytes of scratch memory ffcvx_rk_resize needs for these sizes and
 * `channels` bytes per pixel (3: RGB, 1: gray), with 64 bytes of slack so
 * that any base address works. FFCVX_RESIZE_BAD_ARGUMENT when a size is not
 * in 1 .. 2**24 or `channels` is neither 1 nor 3. */
FFCVX_RK_HIDDEN int64_t ffcvx_rk_scratch_bytes(int64_t src_h, int64_t src_w, int64_t dst_h,
                                               int64_t dst_w, int channels);

/* Resize a packed image of `channels` (3 or 1) interleaved bytes per pixel,
 * src_h x src_w with rows src_stride bytes apart (>= channels * src_w), to
 * dst_h x dst_w written packed into `dst` (channels * dst_w bytes per row).
 * `dst` must not overlap `src` or `scratch`; `scratch` holds scratch_len
 * bytes, at least ffcvx_rk_scratch_bytes(...). `allow_simd` = 0 forces the
 * portable loops; `mirror` != 0 writes the left-right mirror of the result
 * (at no extra cost). An axis whose size does not change is copied exactly.
 *
 * Returns FFCVX_RESIZE_OK; FFCVX_RESIZE_SCRATCH_TOO_SMALL when `scratch` is
 * NULL or too small; FFCVX_RESIZE_BAD_ARGUMENT for a NULL `src` or `dst`,
 * `channels` other than 1 or 3, a size outside 1 .. 2**24 or a short
 * stride. A gray resize gives exactly channel 0 of the RGB resize of the
 * image repeated into R, G and B. */
FFCVX_RK_HIDDEN int ffcvx_rk_resize(const uint8_t *src, int64_t src_h, int64_t src_w,
                                    int64_t src_stride, uint8_t *dst, int64_t dst_h,
                                    int64_t dst_w, uint8_t *scratch, int64_t scratch_len,
                                    int channels, int allow_simd, int mirror);

#endif /* FFCVX_RESIZE_KERNELS_H */
