# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Antialiased RGB and one-channel resize kernels used by ffcvx's image decoders.

The kernel is separable resampling with a triangle (bilinear) filter whose
support widens with the downscale factor, the same family as Pillow's
``Image.resize(size, Image.BILINEAR)``: when shrinking by a factor ``s`` each
output pixel is a weighted mean of about ``2*s`` input pixels along each axis;
when enlarging it is plain bilinear interpolation. Pixels are processed in
fixed point (14-bit coefficients, 32-bit accumulators), the vertical pass runs
first (so the gather-heavy horizontal pass only touches the ``dst_h`` output
rows) and the intermediate image is rounded to uint8, as Pillow does.
On x86-64 CPUs with AVX2 both passes run as ``vpmaddwd`` kernels (selected
at run time, about 5x faster); elsewhere the portable loops below run, with
bit-identical results.

C functions are exported with ``cdef api`` for compiled (Numba) code; get
their addresses with ``numba.extending.get_cython_function_address(
"ffcvx._ext.resize", name)``::

    int ffcvx_resize_rgb(const uint8_t *src, int64_t src_h, int64_t src_w,
                         int64_t src_stride, uint8_t *dst, int64_t dst_h,
                         int64_t dst_w, uint8_t *scratch, int64_t scratch_len)
    int64_t ffcvx_resize_scratch_bytes(int64_t src_h, int64_t src_w,
                                       int64_t dst_h, int64_t dst_w)

``ffcvx_resize_rgb_mirror`` has the signature of ``ffcvx_resize_rgb``; the
one-channel (grayscale) kernels ``ffcvx_resize_gray``,
``ffcvx_resize_gray_mirror`` and ``ffcvx_resize_gray_scratch_bytes`` have
the signatures of their RGB counterparts, with one byte per pixel. A gray
resize gives exactly channel 0 of the RGB resize of the image repeated into
R, G and B (same weights, same rounding), at a third of the work.

None allocates memory, holds the GIL or keeps state between calls; all are
safe to call from many threads at once with distinct scratch buffers.
"""

from libc.stdint cimport uint8_t, uint16_t, uint32_t, int16_t, int32_t, int64_t
from libc.string cimport memcpy, memset

# Coefficients are stored as int16 with COEF_BITS fractional bits. Triangle
# weights are non-negative and sum to one, so every coefficient is at most
# 1 << COEF_BITS = 16384 and fits int16; products with uint8 pixels and their
# sums fit comfortably in int32. int16 x uint8 products let the compiler use
# 16-bit SIMD multiplies in the vertical pass.
cdef enum:
    COEF_BITS = 14
    COEF_ONE = 1 << COEF_BITS
    COEF_HALF = 1 << (COEF_BITS - 1)
    ALIGN = 64
    MAX_SIDE = 1 << 24          # sizes above this are rejected (-3)

# Status codes, shared with the decoder backends' convention.
cdef enum:
    RESIZE_OK = 0
    RESIZE_SCRATCH_TOO_SMALL = -2
    RESIZE_BAD_ARGUMENT = -3


cdef extern from *:
    """
    /* AVX2 kernels of ffcvx/_ext/resize.pyx (x86-64 only; selected at run
     * time, the Cython loops are the portable fallback). Both compute exactly
     * what the fallback computes: 14-bit int16 coefficients, int32 sums,
     * rounding by adding half, arithmetic shift, saturation to 0..255. */
    #include <stdint.h>
    #include <string.h>
    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    #include <immintrin.h>
    #define FFCVX_RESIZE_X86 1

    static int ffcvx_resize_have_avx2(void)
    {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") != 0;
    }

    /* Vertical pass. Output row y is sum_t coef[y][t] * src row (first + t),
     * for n bytes. Pairs of input rows are byte-interleaved so that one
     * vpmaddwd does two taps for eight pixels-channels. Needs n >= 32. */
    __attribute__((target("avx2")))
    static void ffcvx_vertical_avx2(const uint8_t *src, int64_t src_stride, int64_t n,
                                    uint8_t *dst, int64_t dst_stride, int64_t dst_h,
                                    const int32_t *bounds, const int16_t *coef,
                                    int64_t taps, int bits)
    {
        const __m256i zero = _mm256_setzero_si256();
        const __m256i half = _mm256_set1_epi32(1 << (bits - 1));
        int64_t y, x, t;
        for (y = 0; y < dst_h; y++) {
            const int64_t first = bounds[2 * y], count = bounds[2 * y + 1];
            const int16_t *k = coef + y * taps;
            const uint8_t *base = src + first * src_stride;
            uint8_t *out = dst + y * dst_stride;
            x = 0;
            while (x < n) {
                __m256i s0 = half, s1 = half, s2 = half, s3 = half;
                __m256i a, b, c, lo, hi;
                if (x + 32 > n)
                    x = n - 32;          /* overlap the previous block */
                for (t = 0; t < count; t += 2) {
                    const uint8_t *ra = base + t * src_stride + x;
                    uint32_t c0 = (uint16_t)k[t], c1 = 0;
                    a = _mm256_loadu_si256((const __m256i *)ra);
                    if (t + 1 < count) {
                        b = _mm256_loadu_si256((const __m256i *)(ra + src_stride));
                        c1 = (uint16_t)k[t + 1];
                    } else {
                        b = zero;
                    }
                    c = _mm256_set1_epi32((int32_t)((c1 << 16) | c0));
                    lo = _mm256_unpacklo_epi8(a, b);
                    hi = _mm256_unpackhi_epi8(a, b);
                    s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_unpacklo_epi8(lo, zero), c));
                    s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_unpackhi_epi8(lo, zero), c));
                    s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(_mm256_unpacklo_epi8(hi, zero), c));
                    s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(_mm256_unpackhi_epi8(hi, zero), c));
                }
                s0 = _mm256_srai_epi32(s0, bits);
                s1 = _mm256_srai_epi32(s1, bits);
                s2 = _mm256_srai_epi32(s2, bits);
                s3 = _mm256_srai_epi32(s3, bits);
                /* in-lane packs undo the in-lane unpacks: bytes come out in order */
                _mm256_storeu_si256((__m256i *)(out + x),
                                    _mm256_packus_epi16(_mm256_packs_epi32(s0, s1),
                                                        _mm256_packs_epi32(s2, s3)));
                x += 32;
            }
        }
    }

    /* Horizontal pass over RGB rows. For output pixel xx, chunk j covers
     * input pixels lo[xx] + 4j .. + 3, read as one 16-byte load broadcast
     * to both 128-bit lanes; the shuffle makes int16 pairs (p0, p1) of each
     * channel in the low lane and (p2, p3) in the high lane, and pack holds
     * per (xx, j) the matching 16 int16 weights
     * w0 w1 w0 w1 w0 w1 0 0 | w2 w3 w2 w3 w2 w3 0 0, so one vpmaddwd gives
     * four taps of R, G and B. A load may read 4 bytes past input pixel
     * lo + 4*nchunks - 1; the caller guarantees those bytes are readable. */
    __attribute__((target("avx2"), always_inline))
    static inline __m128i ffcvx_hpixel_avx2(const uint8_t *p, const int16_t *c,
                                            int64_t nchunks, __m256i shuf, __m128i half,
                                            int bits)
    {
        __m256i acc = _mm256_madd_epi16(
            _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p)),
                                shuf),
            _mm256_loadu_si256((const __m256i *)c));
        __m128i sum;
        int64_t j;
        for (j = 1; j < nchunks; j++) {
            __m256i px = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p + 12 * j)));
            __m256i w = _mm256_loadu_si256((const __m256i *)(c + 16 * j));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_shuffle_epi8(px, shuf), w));
        }
        sum = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
        sum = _mm_srai_epi32(_mm_add_epi32(sum, half), bits);
        return _mm_packus_epi16(_mm_packs_epi32(sum, sum), sum);
    }

    /* Horizontal pass over RGB rows. For output pixel xx, chunk j covers
     * input pixels lo[xx] + 4j .. + 3, read as one 16-byte load broadcast
     * to both 128-bit lanes; the shuffle makes int16 pairs (p0, p1) of each
     * channel in the low lane and (p2, p3) in the high lane, and pack holds
     * per (xx, j) the matching 16 int16 weights
     * w0 w1 w0 w1 w0 w1 0 0 | w2 w3 w2 w3 w2 w3 0 0, so one vpmaddwd gives
     * four taps of R, G and B. A load may read 4 bytes past input pixel
     * lo + 4*nchunks - 1; the caller guarantees those bytes are readable.
     * Each pixel is stored as 4 bytes (the 4th is overwritten by the next
     * pixel), except the very last one. */
    __attribute__((target("avx2")))
    static void ffcvx_horizontal_avx2(const uint8_t *src, int64_t src_stride, int64_t rows,
                                      const uint8_t *last_row, uint8_t *dst, int64_t dst_w,
                                      const int32_t *lo, const int16_t *pack,
                                      int64_t nchunks, int bits)
    {
        const __m256i shuf = _mm256_setr_epi8(
            0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1,
            6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1);
        const __m128i half = _mm_set1_epi32(1 << (bits - 1));
        const int64_t step = nchunks * 16;
        int64_t y, xx, end;
        uint32_t v;
        for (y = 0; y < rows; y++) {
            const uint8_t *row = (y == rows - 1 && last_row != NULL) ? last_row
                                                                     : src + y * src_stride;
            uint8_t *out = dst + y * dst_w * 3;
            end = (y == rows - 1) ? dst_w - 1 : dst_w;
            if (nchunks == 1) {
                for (xx = 0; xx < end; xx++)
                    _mm_storeu_si32(out + 3 * xx,
                                    ffcvx_hpixel_avx2(row + 3 * (int64_t)lo[xx], pack + xx * 16,
                                                      1, shuf, half, bits));
            } else {
                for (xx = 0; xx < end; xx++)
                    _mm_storeu_si32(out + 3 * xx,
                                    ffcvx_hpixel_avx2(row + 3 * (int64_t)lo[xx], pack + xx * step,
                                                      nchunks, shuf, half, bits));
            }
            if (end < dst_w) {
                v = (uint32_t)_mm_cvtsi128_si32(
                    ffcvx_hpixel_avx2(row + 3 * (int64_t)lo[end], pack + end * step,
                                      nchunks, shuf, half, bits));
                memcpy(out + 3 * end, &v, 3);
            }
        }
    }

    /* Horizontal pass over one-channel rows, eight outputs per step, one
     * output per 32-bit lane, so no horizontal sums are needed. Step g
     * writes outputs x0 = min(8g, dst_w - 8) .. x0 + 7 (the last step
     * overlaps the previous one; needs dst_w >= 8), four per 128-bit lane.
     * Its block of pack (see _pack_horizontal_gray) holds two int32 lane
     * bases b0, b1 (the lowest first input pixel of each lane's outputs),
     * for each of `loads` (1 or 2) 16-byte loads the pshufb masks of the
     * even and odd taps, and per 4-tap chunk c two weight vectors. Chunk c
     * loads 16 (or 32) bytes at b0 + 4c and b1 + 4c; the masks pick for each
     * output the int16 pairs (p0, p2) and (p1, p3) of its taps 4c .. 4c + 3
     * (a byte a mask does not pick is zero, so the picks of two loads are
     * or-ed), and one vpmaddwd each multiplies them by the weight pairs
     * (w0, w2), (w1, w3). A load reads up to 16 * loads - 4 bytes past a
     * row's last window: the caller guarantees they are readable (last_row:
     * a padded copy of the last row, or NULL when the source itself is
     * padded). Same sums, rounding and saturation as the portable loop. */
    __attribute__((target("avx2")))
    static void ffcvx_horizontal_gray_avx2(const uint8_t *src, int64_t src_stride, int64_t rows,
                                           const uint8_t *last_row, uint8_t *dst, int64_t dst_w,
                                           const uint8_t *pack, int64_t nchunks, int64_t loads,
                                           int bits)
    {
        const __m256i half = _mm256_set1_epi32(1 << (bits - 1));
        const int64_t steps = (dst_w + 7) / 8, weights = 16 + 64 * loads;
        const int64_t block = weights + 64 * nchunks;
        int64_t y, g, c, x0;
        for (y = 0; y < rows; y++) {
            const uint8_t *row = (y == rows - 1 && last_row != NULL) ? last_row
                                                                     : src + y * src_stride;
            uint8_t *out = dst + y * dst_w;
            for (g = 0; g < steps; g++) {
                const uint8_t *p = pack + g * block;
                const int32_t *base = (const int32_t *)p;
                const __m256i even0 = _mm256_loadu_si256((const __m256i *)(p + 16));
                const __m256i odd0 = _mm256_loadu_si256((const __m256i *)(p + 48));
                const uint8_t *r0 = row + base[0], *r1 = row + base[1];
                __m256i acc = half, px, ev, od, t;
                uint32_t v0, v1;
                for (c = 0; c < nchunks; c++) {
                    const uint8_t *w = p + weights + 64 * c;
                    px = _mm256_inserti128_si256(
                        _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(r0 + 4 * c))),
                        _mm_loadu_si128((const __m128i *)(r1 + 4 * c)), 1);
                    ev = _mm256_shuffle_epi8(px, even0);
                    od = _mm256_shuffle_epi8(px, odd0);
                    if (loads == 2) {
                        px = _mm256_inserti128_si256(
                            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(r0 + 4 * c + 16))),
                            _mm_loadu_si128((const __m128i *)(r1 + 4 * c + 16)), 1);
                        ev = _mm256_or_si256(ev, _mm256_shuffle_epi8(
                            px, _mm256_loadu_si256((const __m256i *)(p + 80))));
                        od = _mm256_or_si256(od, _mm256_shuffle_epi8(
                            px, _mm256_loadu_si256((const __m256i *)(p + 112))));
                    }
                    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(
                        ev, _mm256_loadu_si256((const __m256i *)w)));
                    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(
                        od, _mm256_loadu_si256((const __m256i *)(w + 32))));
                }
                acc = _mm256_srai_epi32(acc, bits);
                /* in-lane packs: bytes 0..3 of each lane are its four outputs */
                t = _mm256_packus_epi16(_mm256_packs_epi32(acc, acc), acc);
                v0 = (uint32_t)_mm_cvtsi128_si32(_mm256_castsi256_si128(t));
                v1 = (uint32_t)_mm_cvtsi128_si32(_mm256_extracti128_si256(t, 1));
                x0 = 8 * g + 8 > dst_w ? dst_w - 8 : 8 * g;
                memcpy(out + x0, &v0, 4);
                memcpy(out + x0 + 4, &v1, 4);
            }
        }
    }
    #else
    #define FFCVX_RESIZE_X86 0
    static int ffcvx_resize_have_avx2(void) { return 0; }
    static void ffcvx_vertical_avx2(const uint8_t *src, int64_t src_stride, int64_t n,
                                    uint8_t *dst, int64_t dst_stride, int64_t dst_h,
                                    const int32_t *bounds, const int16_t *coef,
                                    int64_t taps, int bits) { }
    static void ffcvx_horizontal_avx2(const uint8_t *src, int64_t src_stride, int64_t rows,
                                      const uint8_t *last_row, uint8_t *dst, int64_t dst_w,
                                      const int32_t *lo, const int16_t *pack,
                                      int64_t nchunks, int bits) { }
    static void ffcvx_horizontal_gray_avx2(const uint8_t *src, int64_t src_stride, int64_t rows,
                                           const uint8_t *last_row, uint8_t *dst, int64_t dst_w,
                                           const uint8_t *pack, int64_t nchunks, int64_t loads,
                                           int bits) { }
    #endif
    """
    bint ffcvx_resize_have_avx2() noexcept nogil
    void ffcvx_vertical_avx2(const uint8_t *src, int64_t src_stride, int64_t n,
                             uint8_t *dst, int64_t dst_stride, int64_t dst_h,
                             const int32_t *bounds, const int16_t *coef,
                             int64_t taps, int bits) noexcept nogil
    void ffcvx_horizontal_avx2(const uint8_t *src, int64_t src_stride, int64_t rows,
                               const uint8_t *last_row, uint8_t *dst, int64_t dst_w,
                               const int32_t *lo, const int16_t *pack,
                               int64_t nchunks, int bits) noexcept nogil
    void ffcvx_horizontal_gray_avx2(const uint8_t *src, int64_t src_stride, int64_t rows,
                                    const uint8_t *last_row, uint8_t *dst, int64_t dst_w,
                                    const uint8_t *pack, int64_t nchunks, int64_t loads,
                                    int bits) noexcept nogil


cdef inline int64_t _align_up(int64_t n) noexcept nogil:
    return (n + (ALIGN - 1)) & ~(<int64_t>(ALIGN - 1))


cdef inline int64_t _taps(int64_t in_size, int64_t out_size) noexcept nogil:
    """Upper bound on filter taps per output pixel along one axis."""
    cdef double support = (<double>in_size) / (<double>out_size)
    cdef int64_t isupport
    if support < 1.0:
        support = 1.0
    isupport = <int64_t>support
    if <double>isupport < support:
        isupport += 1
    return 2 * isupport + 1


cdef struct _Layout:
    int64_t taps_y
    int64_t taps_x
    int64_t off_ybounds     # int32[dst_h][2]: first input row, number of taps
    int64_t off_ycoef       # int16[dst_h][taps_y]
    int64_t off_xbounds     # int32[dst_w][2]: first input column, number of taps
    int64_t off_xcoef       # int16[dst_w][taps_x]
    int64_t chunks_x        # ceil(taps_x / 4): 4-tap groups of the AVX2 kernels
    int64_t off_xpack       # AVX2 horizontal weights: int16[dst_w][chunks_x][16] RGB,
                            # ceil(dst_w / 8) blocks of <= 144 + 64 * chunks_x bytes gray
    int64_t off_xlo         # int32[dst_w]: AVX2 first input column per output
    int64_t off_acc         # int32[src_w * channels]: vertical-pass accumulators
    int64_t off_lastrow     # uint8[src_w * channels + pad]: padded copy of a last row
    int64_t off_tmp         # uint8[dst_h][src_w * channels] + pad: vertical-pass output
    int64_t total           # bytes from the aligned base, plus ALIGN slack


cdef inline void _layout(int64_t src_h, int64_t src_w, int64_t dst_h, int64_t dst_w,
                         int64_t channels, _Layout *lay) noexcept nogil:
    """Scratch layout for ``channels`` (1 or 3) bytes per pixel."""
    cdef int64_t off = 0
    lay.taps_y = _taps(src_h, dst_h)
    lay.taps_x = _taps(src_w, dst_w)
    lay.off_ybounds = off
    off = _align_up(off + 8 * dst_h)
    lay.off_ycoef = off
    off = _align_up(off + 2 * dst_h * lay.taps_y)
    lay.off_xbounds = off
    off = _align_up(off + 8 * dst_w)
    lay.off_xcoef = off
    off = _align_up(off + 2 * dst_w * lay.taps_x)
    lay.chunks_x = (lay.taps_x + 3) // 4
    lay.off_xpack = off
    if channels == 3:
        off = _align_up(off + 32 * dst_w * lay.chunks_x)
    else:
        # one block per step of 8 outputs: bases, masks of up to 2 loads,
        # weights per chunk (_pack_horizontal_gray)
        off = _align_up(off + ((dst_w + 7) // 8) * (144 + 64 * lay.chunks_x))
    lay.off_xlo = off
    off = _align_up(off + 4 * dst_w)
    lay.off_acc = off
    off = _align_up(off + 4 * channels * src_w)
    lay.off_lastrow = off
    off = _align_up(off + channels * src_w + ALIGN)
    lay.off_tmp = off
    off = _align_up(off + channels * src_w * dst_h + ALIGN)
    lay.total = off + ALIGN


cdef inline bint _sizes_ok(int64_t src_h, int64_t src_w, int64_t dst_h,
                           int64_t dst_w) noexcept nogil:
    return (0 < src_h <= MAX_SIDE and 0 < src_w <= MAX_SIDE
            and 0 < dst_h <= MAX_SIDE and 0 < dst_w <= MAX_SIDE)


cdef inline int64_t _scratch_bytes(int64_t src_h, int64_t src_w, int64_t dst_h, int64_t dst_w,
                                   int channels) noexcept nogil:
    cdef _Layout lay
    if not _sizes_ok(src_h, src_w, dst_h, dst_w):
        return RESIZE_BAD_ARGUMENT
    _layout(src_h, src_w, dst_h, dst_w, channels, &lay)
    return lay.total


cdef api int64_t ffcvx_resize_scratch_bytes(int64_t src_h, int64_t src_w,
                                            int64_t dst_h, int64_t dst_w) noexcept nogil:
    """Bytes of scratch memory ``ffcvx_resize_rgb`` needs for these sizes.

    Returns -3 when a size is not in ``1 .. 2**24``. The figure includes 64
    bytes of slack, so any base address works (the kernel aligns it).
    """
    return _scratch_bytes(src_h, src_w, dst_h, dst_w, 3)


cdef api int64_t ffcvx_resize_gray_scratch_bytes(int64_t src_h, int64_t src_w,
                                                 int64_t dst_h, int64_t dst_w) noexcept nogil:
    """Bytes of scratch memory ``ffcvx_resize_gray`` needs for these sizes.

    As ``ffcvx_resize_scratch_bytes``, for one byte per pixel (its weight
    tables can make it larger than the RGB figure for small images). Returns
    -3 when a size is not in ``1 .. 2**24``.
    """
    return _scratch_bytes(src_h, src_w, dst_h, dst_w, 1)


cdef inline double _triangle(double x) noexcept nogil:
    if x < 0.0:
        x = -x
    if x < 1.0:
        return 1.0 - x
    return 0.0


cdef void _coefficients(int64_t in_size, int64_t out_size, int64_t taps,
                        int32_t *bounds, int16_t *coef) noexcept nogil:
    """Fixed-point filter weights for one axis.

    For output index ``i`` the filter is centred on input coordinate
    ``(i + 0.5) * in_size / out_size`` (pixel centres, like Pillow); its
    half-width is ``max(in_size / out_size, 1)`` input pixels. Writes
    ``bounds[2*i] = first input index``, ``bounds[2*i + 1] = number of taps``
    and ``coef[i*taps : i*taps + n]`` (weights, summing to ~``COEF_ONE``).
    Leading and trailing taps that round to zero are dropped.
    """
    cdef double scale = (<double>in_size) / (<double>out_size)
    cdef double filterscale = scale if scale > 1.0 else 1.0
    cdef double support = filterscale  # triangle support is 1 at unit scale
    cdef double inv = 1.0 / filterscale
    cdef double center, total, w
    cdef int64_t i, t, lo, hi, n, first, last
    cdef int32_t q
    cdef int16_t *c
    for i in range(out_size):
        center = (i + 0.5) * scale
        lo = <int64_t>(center - support + 0.5)
        if lo < 0:
            lo = 0
        hi = <int64_t>(center + support + 0.5)
        if hi > in_size:
            hi = in_size
        n = hi - lo
        if n > taps:
            n = taps
        if n < 1:
            # cannot happen for positive sizes; keep the kernel total anyway
            if lo >= in_size:
                lo = in_size - 1
            n = 1
        c = coef + i * taps
        total = 0.0
        for t in range(n):
            total += _triangle((t + lo - center + 0.5) * inv)
        if total <= 0.0:
            total = 1.0
        first = -1
        last = -1
        for t in range(n):
            w = _triangle((t + lo - center + 0.5) * inv)
            q = <int32_t>(w / total * COEF_ONE + 0.5)
            c[t] = <int16_t>q
            if q != 0:
                if first < 0:
                    first = t
                last = t
        if first < 0:
            # all weights rounded to zero (extreme shrink): plain average
            first = 0
            last = n - 1
            for t in range(n):
                c[t] = <int16_t>((COEF_ONE + n // 2) // n)
        if first > 0:
            for t in range(last - first + 1):
                c[t] = c[t + first]
        bounds[2 * i] = <int32_t>(lo + first)
        bounds[2 * i + 1] = <int32_t>(last - first + 1)


cdef inline uint8_t _clip8(int32_t v) noexcept nogil:
    v = v >> COEF_BITS
    if v < 0:
        return 0
    if v > 255:
        return 255
    return <uint8_t>v


cdef void _vertical(const uint8_t *src, int64_t src_stride, int64_t n,
                    uint8_t *dst, int64_t dst_stride, int64_t dst_h,
                    const int32_t *bounds, const int16_t *coef, int64_t taps,
                    int32_t *acc) noexcept nogil:
    """Vertical pass: ``dst_h`` rows of ``n`` bytes each.

    Each tap is a multiply-add of a whole input row into the int32
    accumulator row, a loop the compiler turns into SIMD code.
    """
    cdef int64_t y, t, x, first, count
    cdef int16_t c
    cdef const uint8_t *row
    cdef uint8_t *out
    cdef const int16_t *k
    for y in range(dst_h):
        first = bounds[2 * y]
        count = bounds[2 * y + 1]
        k = coef + y * taps
        out = dst + y * dst_stride
        row = src + first * src_stride
        c = k[0]
        for x in range(n):
            acc[x] = COEF_HALF + <int32_t>(c * <int16_t>row[x])
        for t in range(1, count):
            row = src + (first + t) * src_stride
            c = k[t]
            for x in range(n):
                acc[x] += <int32_t>(c * <int16_t>row[x])
        for x in range(n):
            out[x] = _clip8(acc[x])


cdef void _horizontal(const uint8_t *src, int64_t src_stride, int64_t rows,
                      uint8_t *dst, int64_t dst_w,
                      const int32_t *bounds, const int16_t *coef,
                      int64_t taps) noexcept nogil:
    """Horizontal pass: ``rows`` rows, RGB interleaved, into packed ``dst``."""
    cdef int64_t y, xx, t, count
    cdef int32_t r, g, b, c
    cdef const uint8_t *row
    cdef const uint8_t *p
    cdef const int16_t *k
    cdef uint8_t *out
    for y in range(rows):
        row = src + y * src_stride
        out = dst + y * dst_w * 3
        for xx in range(dst_w):
            p = row + 3 * <int64_t>bounds[2 * xx]
            count = bounds[2 * xx + 1]
            k = coef + xx * taps
            r = COEF_HALF
            g = COEF_HALF
            b = COEF_HALF
            for t in range(count):
                c = k[t]
                r += c * p[0]
                g += c * p[1]
                b += c * p[2]
                p += 3
            out[0] = _clip8(r)
            out[1] = _clip8(g)
            out[2] = _clip8(b)
            out += 3


cdef void _horizontal_gray(const uint8_t *src, int64_t src_stride, int64_t rows,
                           uint8_t *dst, int64_t dst_w,
                           const int32_t *bounds, const int16_t *coef,
                           int64_t taps) noexcept nogil:
    """Horizontal pass over one-channel rows into packed ``dst``.

    The arithmetic of one channel of :func:`_horizontal`, so a gray row gives
    exactly channel 0 of the same row repeated into RGB.
    """
    cdef int64_t y, xx, t, count
    cdef int32_t v
    cdef const uint8_t *p
    cdef const int16_t *k
    cdef uint8_t *out
    for y in range(rows):
        out = dst + y * dst_w
        for xx in range(dst_w):
            p = src + y * src_stride + bounds[2 * xx]
            count = bounds[2 * xx + 1]
            k = coef + xx * taps
            v = COEF_HALF
            for t in range(count):
                v += k[t] * p[t]
            out[xx] = _clip8(v)


cdef int64_t _pack_horizontal_gray(int64_t in_size, int64_t out_size, int64_t taps,
                                   const int32_t *bounds, const int16_t *coef,
                                   int64_t chunks, int32_t *lo, uint8_t *pack,
                                   int64_t *loads) noexcept nogil:
    """Rearrange one axis' weights for the AVX2 one-channel horizontal kernel.

    Windows as in :func:`_pack_horizontal` (4-tap chunks; a window that would
    pass the row end is moved left, its extra leading taps weighted 0), first
    input pixel of output ``xx`` in ``lo[xx]``. ``*loads`` receives how many
    16-byte loads per lane and chunk reach every tap: 1 when each lane's four
    windows start within 12 bytes of its lowest start, else 2 (within 28).
    Then one block per step ``g`` of 8 outputs (``x0 = min(8g, out_size -
    8)``), as ``ffcvx_horizontal_gray_avx2`` reads it: int32 lane bases, the
    lowest ``lo`` of outputs ``x0 .. x0 + 3`` and of ``x0 + 4 .. x0 + 7``
    (16 bytes with padding); per load the pshufb masks of the even and odd
    taps (32 bytes each: for output ``x0 + 4L + q`` bytes ``4q .. 4q + 3``
    of lane ``L`` pick ``r, -, r + 2, -`` and ``r + 1, -, r + 3, -``, with
    ``r = lo[xx] - base`` counted from the load's first byte and ``-`` a
    zero); then per chunk the int16 weight pairs ``(w0, w2)`` and ``(w1,
    w3)`` of each output as int32 (32 bytes each). Returns the number of
    chunks used, or 0 when the row is narrower than one window or than
    ``16 * loads`` pixels (loads must not pass the next row), ``out_size <
    8``, or the windows of a lane spread further (shrinks beyond about 9x):
    the caller then uses the portable loop.
    """
    cdef int64_t xx, x0, g, q, t, j, n, start, shift, width, pos, r, idx, load, steps
    cdef int64_t used = 1, spread = 0, weights
    cdef const int16_t *k
    cdef uint8_t *block
    cdef uint8_t *mask
    cdef int32_t *base
    cdef int32_t *wpair
    cdef uint16_t w[4]
    cdef int32_t low[2]
    for xx in range(out_size):
        n = bounds[2 * xx + 1]
        if (n + 3) // 4 > used:
            used = (n + 3) // 4
    width = 4 * used
    if used > chunks or in_size < width or in_size < 16 or out_size < 8:
        return 0
    for xx in range(out_size):
        start = bounds[2 * xx]
        shift = start + width - in_size
        if shift < 0:
            shift = 0
        lo[xx] = <int32_t>(start - shift)
    steps = (out_size + 7) // 8
    for g in range(2 * steps):
        # every lane's spread (mirrored tables run backwards: take min and max)
        x0 = out_size - 8 if 8 * (g // 2) + 8 > out_size else 8 * (g // 2)
        x0 += 4 * (g % 2)
        low[0] = lo[x0]
        low[1] = lo[x0]
        for q in range(1, 4):
            if lo[x0 + q] < low[0]:
                low[0] = lo[x0 + q]
            if lo[x0 + q] > low[1]:
                low[1] = lo[x0 + q]
        if low[1] - low[0] > spread:
            spread = low[1] - low[0]
    loads[0] = 1 if spread <= 12 else 2
    if spread > 28 or in_size < 16 * loads[0]:
        return 0
    weights = 16 + 64 * loads[0]
    for g in range(steps):
        x0 = out_size - 8 if 8 * g + 8 > out_size else 8 * g
        block = pack + g * (weights + 64 * used)
        base = <int32_t *>block
        for q in range(2):
            base[q] = lo[x0 + 4 * q]
            for t in range(1, 4):
                if lo[x0 + 4 * q + t] < base[q]:
                    base[q] = lo[x0 + 4 * q + t]
        base[2] = 0
        base[3] = 0
        for q in range(8):
            xx = x0 + q
            r = lo[xx] - base[q // 4]
            for t in range(2):           # tap parity: even mask, odd mask
                for j in range(2):       # the two taps of that parity in a chunk
                    idx = r + t + 2 * j
                    for load in range(loads[0]):
                        mask = block + 16 + 64 * load + 32 * t + 4 * q + 2 * j
                        pos = idx - 16 * load
                        mask[0] = <uint8_t>pos if 0 <= pos < 16 else 0x80
                        mask[1] = 0x80
            start = bounds[2 * xx]
            n = bounds[2 * xx + 1]
            k = coef + xx * taps
            shift = start - lo[xx]
            for j in range(used):
                for t in range(4):
                    pos = 4 * j + t - shift      # index into the original taps
                    w[t] = <uint16_t>k[pos] if 0 <= pos < n else 0
                wpair = <int32_t *>(block + weights + 64 * j)
                # little-endian int16 pairs: the low half meets the first picked byte
                wpair[q] = <int32_t>(w[0] | (<uint32_t>w[2] << 16))
                wpair[8 + q] = <int32_t>(w[1] | (<uint32_t>w[3] << 16))
    return used


cdef int64_t _pack_horizontal(int64_t in_size, int64_t out_size, int64_t taps,
                              const int32_t *bounds, const int16_t *coef,
                              int64_t chunks, int32_t *lo, int16_t *pack) noexcept nogil:
    """Rearrange one axis' weights for the AVX2 horizontal kernel.

    Uses as few 4-tap chunks as the widest output needs (at most ``chunks``)
    and moves windows that would run past the row end to the left (the extra
    leading taps get weight 0), so loads stay within 4 bytes of the row end.
    Writes ``lo[out_size]`` and ``pack[out_size][used][16]``. Returns the
    number of chunks used, or 0 when the row is narrower than one window
    (the caller then uses the portable loop).
    """
    cdef int64_t xx, t, j, n, start, shift, width, pos, used = 1
    cdef const int16_t *k
    cdef int16_t *dst
    cdef int16_t w[4]
    for xx in range(out_size):
        n = bounds[2 * xx + 1]
        if (n + 3) // 4 > used:
            used = (n + 3) // 4
    width = 4 * used
    if used > chunks or in_size < width:
        return 0
    for xx in range(out_size):
        start = bounds[2 * xx]
        n = bounds[2 * xx + 1]
        k = coef + xx * taps
        shift = start + width - in_size
        if shift < 0:
            shift = 0
        lo[xx] = <int32_t>(start - shift)
        for j in range(used):
            for t in range(4):
                pos = 4 * j + t - shift      # index into the original taps
                w[t] = k[pos] if 0 <= pos < n else 0
            dst = pack + (xx * used + j) * 16
            for t in range(3):
                dst[2 * t] = w[0]
                dst[2 * t + 1] = w[1]
                dst[8 + 2 * t] = w[2]
                dst[8 + 2 * t + 1] = w[3]
            dst[6] = 0
            dst[7] = 0
            dst[14] = 0
            dst[15] = 0
    return used


cdef void _run_horizontal(bint simd, int64_t channels, const uint8_t *src, int64_t src_stride,
                          int64_t rows, bint src_padded, int64_t src_w, uint8_t *dst,
                          int64_t dst_w, const int32_t *bounds, const int16_t *coef,
                          int64_t taps, int64_t chunks, int32_t *xlo, int16_t *xpack,
                          uint8_t *lastrow) noexcept nogil:
    """Horizontal pass with the AVX2 kernel when possible, else the loop.

    ``channels`` is 3 (RGB) or 1 (gray). ``src_padded``: at least 32
    readable bytes follow the last source row (true for the scratch image);
    otherwise the last row is copied into the padded ``lastrow`` buffer
    first, as the AVX2 kernels read a few bytes past a row's last window.
    """
    cdef int64_t used = 0, loads = 1
    cdef const uint8_t *last = NULL
    if channels == 1:
        if simd:
            used = _pack_horizontal_gray(src_w, dst_w, taps, bounds, coef, chunks, xlo,
                                         <uint8_t *>xpack, &loads)
        if used == 0:
            _horizontal_gray(src, src_stride, rows, dst, dst_w, bounds, coef, taps)
            return
        if not src_padded:
            memcpy(lastrow, src + (rows - 1) * src_stride, <size_t>src_w)
            memset(lastrow + src_w, 0, 32)
            last = lastrow
        ffcvx_horizontal_gray_avx2(src, src_stride, rows, last, dst, dst_w,
                                   <const uint8_t *>xpack, used, loads, COEF_BITS)
        return
    if simd:
        used = _pack_horizontal(src_w, dst_w, taps, bounds, coef, chunks, xlo, xpack)
    if used == 0:
        _horizontal(src, src_stride, rows, dst, dst_w, bounds, coef, taps)
        return
    if not src_padded:
        memcpy(lastrow, src + (rows - 1) * src_stride, <size_t>(3 * src_w))
        memset(lastrow + 3 * src_w, 0, 16)
        last = lastrow
    ffcvx_horizontal_avx2(src, src_stride, rows, last, dst, dst_w, xlo, xpack, used, COEF_BITS)


cdef void _run_vertical(bint simd, const uint8_t *src, int64_t src_stride, int64_t n,
                        uint8_t *dst, int64_t dst_stride, int64_t dst_h,
                        const int32_t *bounds, const int16_t *coef, int64_t taps,
                        int32_t *acc) noexcept nogil:
    """Vertical pass with the AVX2 kernel when possible, else the loop."""
    if simd and n >= 32:
        ffcvx_vertical_avx2(src, src_stride, n, dst, dst_stride, dst_h, bounds, coef,
                            taps, COEF_BITS)
    else:
        _vertical(src, src_stride, n, dst, dst_stride, dst_h, bounds, coef, taps, acc)


cdef void _mirror_table(int64_t out_size, int64_t taps, int32_t *bounds,
                        int16_t *coef) noexcept nogil:
    """Reverse the order of an axis' output positions, in place.

    Output ``i`` then takes the weights of output ``out_size - 1 - i``, so
    the pass writes the left-right mirror of the unmirrored result exactly.
    """
    cdef int64_t i, j, t
    cdef int32_t b
    cdef int16_t c
    for i in range(out_size // 2):
        j = out_size - 1 - i
        for t in range(2):
            b = bounds[2 * i + t]
            bounds[2 * i + t] = bounds[2 * j + t]
            bounds[2 * j + t] = b
        for t in range(taps):
            c = coef[i * taps + t]
            coef[i * taps + t] = coef[j * taps + t]
            coef[j * taps + t] = c


cdef int _resize(const uint8_t *src, int64_t src_h, int64_t src_w, int64_t src_stride,
                 uint8_t *dst, int64_t dst_h, int64_t dst_w, uint8_t *scratch,
                 int64_t scratch_len, int64_t channels, bint allow_simd,
                 bint mirror=False) noexcept nogil:
    """Both kernels: ``channels`` interleaved bytes per pixel (3 RGB, 1 gray).

    The vertical pass treats a row as bytes whatever the channels, so a
    gray row gets exactly the arithmetic of each channel of an RGB row.
    """
    cdef _Layout lay
    cdef uint8_t *base
    cdef int32_t *ybounds
    cdef int16_t *ycoef
    cdef int32_t *xbounds
    cdef int16_t *xcoef
    cdef int16_t *xpack
    cdef int32_t *xlo
    cdef int32_t *acc
    cdef uint8_t *tmp
    cdef uint8_t *lastrow
    cdef int64_t y, row_bytes
    cdef bint do_v, do_h, simd
    if src == NULL or dst == NULL or (channels != 1 and channels != 3):
        return RESIZE_BAD_ARGUMENT
    if not _sizes_ok(src_h, src_w, dst_h, dst_w) or src_stride < channels * src_w:
        return RESIZE_BAD_ARGUMENT
    _layout(src_h, src_w, dst_h, dst_w, channels, &lay)
    if scratch == NULL or scratch_len < lay.total:
        return RESIZE_SCRATCH_TOO_SMALL
    base = scratch + ((ALIGN - (<size_t>scratch) % ALIGN) % ALIGN)
    ybounds = <int32_t *>(base + lay.off_ybounds)
    ycoef = <int16_t *>(base + lay.off_ycoef)
    xbounds = <int32_t *>(base + lay.off_xbounds)
    xcoef = <int16_t *>(base + lay.off_xcoef)
    xpack = <int16_t *>(base + lay.off_xpack)
    xlo = <int32_t *>(base + lay.off_xlo)
    acc = <int32_t *>(base + lay.off_acc)
    lastrow = base + lay.off_lastrow
    tmp = base + lay.off_tmp
    simd = allow_simd and ffcvx_resize_have_avx2()

    do_v = src_h != dst_h
    # Mirroring happens in the horizontal pass, so it always runs then (at
    # unit scale its weights are single taps of 1: an exact copy).
    do_h = src_w != dst_w or mirror
    row_bytes = channels * src_w
    if not do_v and not do_h:
        for y in range(src_h):
            memcpy(dst + y * row_bytes, src + y * src_stride, <size_t>row_bytes)
        return RESIZE_OK
    if do_v:
        _coefficients(src_h, dst_h, lay.taps_y, ybounds, ycoef)
    if do_h:
        _coefficients(src_w, dst_w, lay.taps_x, xbounds, xcoef)
        if mirror:
            _mirror_table(dst_w, lay.taps_x, xbounds, xcoef)
    if do_v and do_h:
        _run_vertical(simd, src, src_stride, row_bytes, tmp, row_bytes, dst_h,
                      ybounds, ycoef, lay.taps_y, acc)
        _run_horizontal(simd, channels, tmp, row_bytes, dst_h, True, src_w, dst, dst_w,
                        xbounds, xcoef, lay.taps_x, lay.chunks_x, xlo, xpack, lastrow)
    elif do_v:
        _run_vertical(simd, src, src_stride, row_bytes, dst, channels * dst_w, dst_h,
                      ybounds, ycoef, lay.taps_y, acc)
    else:
        _run_horizontal(simd, channels, src, src_stride, dst_h, False, src_w, dst, dst_w,
                        xbounds, xcoef, lay.taps_x, lay.chunks_x, xlo, xpack, lastrow)
    return RESIZE_OK


cdef api int ffcvx_resize_rgb(const uint8_t *src, int64_t src_h, int64_t src_w,
                              int64_t src_stride, uint8_t *dst, int64_t dst_h,
                              int64_t dst_w, uint8_t *scratch,
                              int64_t scratch_len) noexcept nogil:
    """Resize a packed RGB image (``src_h x src_w``) to ``dst_h x dst_w``.

    ``src`` rows are ``src_stride`` bytes apart (``>= 3 * src_w``); ``dst``
    is written packed (``3 * dst_w`` bytes per row) and must not overlap
    ``src`` or ``scratch``. ``scratch`` must hold
    ``ffcvx_resize_scratch_bytes(src_h, src_w, dst_h, dst_w)`` bytes.
    Returns 0, -2 when ``scratch_len`` is too small (or ``scratch`` is
    NULL), -3 for a NULL ``src``/``dst``, a size outside ``1 .. 2**24`` or
    ``src_stride < 3 * src_w``. An axis whose size does not change is
    copied exactly. Uses AVX2 when the CPU has it; results are identical
    either way.
    """
    return _resize(src, src_h, src_w, src_stride, dst, dst_h, dst_w, scratch,
                   scratch_len, 3, True)


cdef api int ffcvx_resize_rgb_mirror(const uint8_t *src, int64_t src_h, int64_t src_w,
                                     int64_t src_stride, uint8_t *dst, int64_t dst_h,
                                     int64_t dst_w, uint8_t *scratch,
                                     int64_t scratch_len) noexcept nogil:
    """As ``ffcvx_resize_rgb``, writing the left-right mirror of the result.

    Costs the same as the plain resize: the horizontal pass reads its weights
    in reverse output order. Lets a crop decoder apply a random horizontal
    flip for free.
    """
    return _resize(src, src_h, src_w, src_stride, dst, dst_h, dst_w, scratch,
                   scratch_len, 3, True, True)


cdef api int ffcvx_resize_gray(const uint8_t *src, int64_t src_h, int64_t src_w,
                               int64_t src_stride, uint8_t *dst, int64_t dst_h,
                               int64_t dst_w, uint8_t *scratch,
                               int64_t scratch_len) noexcept nogil:
    """Resize a one-channel image (``src_h x src_w`` bytes) to ``dst_h x dst_w``.

    The one-channel form of ``ffcvx_resize_rgb``: the result is exactly
    channel 0 of ``ffcvx_resize_rgb`` run on the image repeated into R, G
    and B (same weights and rounding), with a third of the work.

    ``src`` rows are ``src_stride`` bytes apart (``>= src_w``); ``dst`` is
    written packed (``dst_w`` bytes per row, ``dst_h`` rows) and must not
    overlap ``src`` or ``scratch``. ``scratch`` must hold
    ``ffcvx_resize_gray_scratch_bytes(src_h, src_w, dst_h, dst_w)`` bytes
    (any alignment). Returns 0; -2 when ``scratch_len`` is too small (or
    ``scratch`` is NULL); -3 for a NULL ``src``/``dst``, a size outside
    ``1 .. 2**24`` or ``src_stride < src_w``. Uses AVX2 when the CPU has
    it; results are identical either way.
    """
    return _resize(src, src_h, src_w, src_stride, dst, dst_h, dst_w, scratch,
                   scratch_len, 1, True)


cdef api int ffcvx_resize_gray_mirror(const uint8_t *src, int64_t src_h, int64_t src_w,
                                      int64_t src_stride, uint8_t *dst, int64_t dst_h,
                                      int64_t dst_w, uint8_t *scratch,
                                      int64_t scratch_len) noexcept nogil:
    """As ``ffcvx_resize_gray``, writing the left-right mirror of the result (free)."""
    return _resize(src, src_h, src_w, src_stride, dst, dst_h, dst_w, scratch,
                   scratch_len, 1, True, True)


def resize_scratch_bytes(int64_t src_h, int64_t src_w, int64_t dst_h, int64_t dst_w,
                         int channels=3):
    """Scratch size for :func:`resize_rgb` / ``ffcvx_resize_rgb`` (or the gray kernel).

    Parameters
    ----------
    src_h, src_w : int
        Input height and width in pixels.
    dst_h, dst_w : int
        Output height and width in pixels.
    channels : {3, 1}, optional
        3: ``ffcvx_resize_scratch_bytes`` (RGB); 1:
        ``ffcvx_resize_gray_scratch_bytes`` (:func:`resize_gray`).

    Returns
    -------
    int
        Bytes of scratch memory (any alignment).

    Raises
    ------
    ValueError
        If a size is not in ``1 .. 2**24``, or ``channels`` is not 1 or 3.
    """
    cdef int64_t n
    if channels == 3:
        n = ffcvx_resize_scratch_bytes(src_h, src_w, dst_h, dst_w)
    elif channels == 1:
        n = ffcvx_resize_gray_scratch_bytes(src_h, src_w, dst_h, dst_w)
    else:
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if n < 0:
        raise ValueError(f"bad resize sizes {src_h}x{src_w} -> {dst_h}x{dst_w}")
    return n


cdef _run_resize(const uint8_t *src, int64_t h, int64_t w, int64_t stride, uint8_t *dst,
                 int64_t H, int64_t W, scratch, bint allow_simd, bint do_mirror, int channels):
    # The part of resize_rgb / resize_gray after their shape checks: scratch,
    # the kernel call without the GIL, and its status as a ValueError.
    cdef uint8_t[::1] tv
    cdef uint8_t *scratch_ptr
    cdef int64_t scratch_len
    cdef int rc
    cdef int64_t need = _scratch_bytes(h, w, H, W, channels)
    if need < 0:
        raise ValueError(f"bad resize sizes {h}x{w} -> {H}x{W}")
    if scratch is None:
        import numpy
        scratch = numpy.empty(need, dtype=numpy.uint8)
    tv = scratch
    scratch_len = tv.shape[0]
    scratch_ptr = &tv[0] if scratch_len > 0 else NULL
    with nogil:
        rc = _resize(src, h, w, stride, dst, H, W, scratch_ptr, scratch_len, channels,
                     allow_simd, do_mirror)
    if rc == RESIZE_SCRATCH_TOO_SMALL:
        raise ValueError(f"scratch has {scratch_len} bytes, resize needs {need}")
    if rc != RESIZE_OK:
        name = 'ffcvx_resize_rgb' if channels == 3 else 'ffcvx_resize_gray'
        raise ValueError(f"{name} rejected {h}x{w} -> {H}x{W} (status {rc})")


def resize_rgb(src, dst, scratch=None, simd=True, mirror=False):
    """Resize an RGB image into ``dst`` (antialiased bilinear, fixed point).

    Parameters
    ----------
    src : ndarray of uint8, shape (h, w, 3)
        Input image. Rows may be strided (e.g. a crop view), but each row's
        pixels must be packed: strides ``(any >= 3*w, 3, 1)``.
    dst : ndarray of uint8, shape (H, W, 3), C-contiguous
        Output; its shape sets the output size. Must not overlap ``src``.
    scratch : ndarray of uint8, shape (n,), optional
        Working memory of at least ``resize_scratch_bytes(h, w, H, W)``
        bytes; allocated per call when omitted.
    simd : bool, optional
        False forces the portable loops (for tests: the AVX2 kernels must
        give identical pixels).
    mirror : bool, optional
        Write the left-right mirror of the resized image.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        ``dst``.

    Raises
    ------
    ValueError
        If a shape is not (., ., 3), a size is 0 or above 2**24, the pixel
        rows of ``src`` are not packed, or ``scratch`` is too small.
    """
    cdef const uint8_t[:, :, :] sv = src
    cdef uint8_t[:, :, ::1] dv = dst
    cdef int64_t w = sv.shape[1]
    if sv.shape[2] != 3 or dv.shape[2] != 3:
        raise ValueError("src and dst must have 3 channels (shape (h, w, 3))")
    if sv.strides[2] != 1 or sv.strides[1] != 3 or sv.strides[0] < 3 * w:
        raise ValueError("src pixel rows must be packed RGB: strides (>= 3*w, 3, 1)")
    _run_resize(&sv[0, 0, 0], sv.shape[0], w, sv.strides[0], &dv[0, 0, 0], dv.shape[0], dv.shape[1],
                scratch, bool(simd), bool(mirror), 3)
    return dst


def resize_gray(src, dst, scratch=None, simd=True, mirror=False):
    """Resize a one-channel image into ``dst`` (``ffcvx_resize_gray``).

    Gives exactly channel 0 of :func:`resize_rgb` on the image repeated into
    three channels.

    Parameters
    ----------
    src : ndarray of uint8, shape (h, w)
        Input image. Rows may be strided (e.g. a crop view), but each row's
        pixels must be packed: strides ``(any >= w, 1)``.
    dst : ndarray of uint8, shape (H, W), C-contiguous
        Output; its shape sets the output size. Must not overlap ``src``.
    scratch : ndarray of uint8, shape (n,), optional
        Working memory of at least ``resize_scratch_bytes(h, w, H, W,
        channels=1)`` bytes; allocated per call when omitted.
    simd : bool, optional
        False forces the portable loops (for tests).
    mirror : bool, optional
        Write the left-right mirror of the resized image.

    Returns
    -------
    ndarray of uint8, shape (H, W)
        ``dst``.

    Raises
    ------
    ValueError
        If a size is 0 or above 2**24, the pixel rows of ``src`` are not
        packed, or ``scratch`` is too small.
    """
    cdef const uint8_t[:, :] sv = src
    cdef uint8_t[:, ::1] dv = dst
    cdef int64_t w = sv.shape[1]
    if sv.strides[1] != 1 or sv.strides[0] < w:
        raise ValueError("src pixel rows must be packed: strides (>= w, 1)")
    _run_resize(&sv[0, 0], sv.shape[0], w, sv.strides[0], &dv[0, 0], dv.shape[0], dv.shape[1],
                scratch, bool(simd), bool(mirror), 1)
    return dst
