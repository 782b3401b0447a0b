# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Antialiased RGB resize kernel used by ffcvx's image decoders.

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

Two C functions are exported with ``cdef api`` for compiled (Numba) code; get
their addresses with ``numba.extending.get_cython_function_address(
"ffcvx._ext.resize", name)``::

    int ffcvx_resize_rgb(const uint8_t *src, int64_t src_h, int64_t src_w,
                         int64_t src_stride, uint8_t *dst, int64_t dst_h,
                         int64_t dst_w, uint8_t *scratch, int64_t scratch_len)
    int64_t ffcvx_resize_scratch_bytes(int64_t src_h, int64_t src_w,
                                       int64_t dst_h, int64_t dst_w)

Neither allocates memory, holds the GIL or keeps state between calls; both
are safe to call from many threads at once with distinct scratch buffers.
"""

from libc.stdint cimport uint8_t, int16_t, int32_t, int64_t
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
    int64_t chunks_x        # ceil(taps_x / 4): 4-tap groups of the AVX2 kernel
    int64_t off_xpack       # int16[dst_w][chunks_x][16]: AVX2 horizontal weights
    int64_t off_xlo         # int32[dst_w]: AVX2 first input column per output
    int64_t off_acc         # int32[src_w * 3]: vertical-pass accumulators
    int64_t off_lastrow     # uint8[src_w * 3 + pad]: padded copy of a last row
    int64_t off_tmp         # uint8[dst_h][src_w * 3] + pad: vertical-pass output
    int64_t total           # bytes from the aligned base, plus ALIGN slack


cdef inline void _layout(int64_t src_h, int64_t src_w, int64_t dst_h, int64_t dst_w,
                         _Layout *lay) noexcept nogil:
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
    off = _align_up(off + 32 * dst_w * lay.chunks_x)
    lay.off_xlo = off
    off = _align_up(off + 4 * dst_w)
    lay.off_acc = off
    off = _align_up(off + 4 * 3 * src_w)
    lay.off_lastrow = off
    off = _align_up(off + 3 * src_w + ALIGN)
    lay.off_tmp = off
    off = _align_up(off + 3 * src_w * dst_h + ALIGN)
    lay.total = off + ALIGN


cdef inline bint _sizes_ok(int64_t src_h, int64_t src_w, int64_t dst_h,
                           int64_t dst_w) noexcept nogil:
    return (0 < src_h <= MAX_SIDE and 0 < src_w <= MAX_SIDE
            and 0 < dst_h <= MAX_SIDE and 0 < dst_w <= MAX_SIDE)


cdef api int64_t ffcvx_resize_scratch_bytes(int64_t src_h, int64_t src_w,
                                            int64_t dst_h, int64_t dst_w) noexcept nogil:
    """Bytes of scratch memory ``ffcvx_resize_rgb`` needs for these sizes.

    Returns -3 when a size is not in ``1 .. 2**24``. The figure includes 64
    bytes of slack, so any base address works (the kernel aligns it).
    """
    cdef _Layout lay
    if not _sizes_ok(src_h, src_w, dst_h, dst_w):
        return RESIZE_BAD_ARGUMENT
    _layout(src_h, src_w, dst_h, dst_w, &lay)
    return lay.total


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


cdef void _run_horizontal(bint simd, const uint8_t *src, int64_t src_stride, int64_t rows,
                          bint src_padded, int64_t src_w, uint8_t *dst, int64_t dst_w,
                          const int32_t *bounds, const int16_t *coef, int64_t taps,
                          int64_t chunks, int32_t *xlo, int16_t *xpack,
                          uint8_t *lastrow) noexcept nogil:
    """Horizontal pass with the AVX2 kernel when possible, else the loop.

    ``src_padded``: at least 4 readable bytes follow the last source row
    (true for the scratch image); otherwise the last row is copied into the
    padded ``lastrow`` buffer first.
    """
    cdef int64_t used = 0
    cdef const uint8_t *last = NULL
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
                 int64_t scratch_len, bint allow_simd, bint mirror=False) noexcept nogil:
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
    if src == NULL or dst == NULL:
        return RESIZE_BAD_ARGUMENT
    if not _sizes_ok(src_h, src_w, dst_h, dst_w) or src_stride < 3 * src_w:
        return RESIZE_BAD_ARGUMENT
    _layout(src_h, src_w, dst_h, dst_w, &lay)
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
    if not do_v and not do_h:
        row_bytes = 3 * src_w
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
        _run_vertical(simd, src, src_stride, 3 * src_w, tmp, 3 * src_w, dst_h,
                      ybounds, ycoef, lay.taps_y, acc)
        _run_horizontal(simd, tmp, 3 * src_w, dst_h, True, src_w, dst, dst_w,
                        xbounds, xcoef, lay.taps_x, lay.chunks_x, xlo, xpack, lastrow)
    elif do_v:
        _run_vertical(simd, src, src_stride, 3 * src_w, dst, 3 * dst_w, dst_h,
                      ybounds, ycoef, lay.taps_y, acc)
    else:
        _run_horizontal(simd, src, src_stride, dst_h, False, src_w, dst, dst_w,
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
                   scratch_len, True)


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
                   scratch_len, True, True)


def resize_scratch_bytes(int64_t src_h, int64_t src_w, int64_t dst_h, int64_t dst_w):
    """Scratch size for :func:`resize_rgb` / ``ffcvx_resize_rgb``.

    Parameters
    ----------
    src_h, src_w : int
        Input height and width in pixels.
    dst_h, dst_w : int
        Output height and width in pixels.

    Returns
    -------
    int
        Bytes of scratch memory (any alignment).

    Raises
    ------
    ValueError
        If a size is not in ``1 .. 2**24``.
    """
    cdef int64_t n = ffcvx_resize_scratch_bytes(src_h, src_w, dst_h, dst_w)
    if n < 0:
        raise ValueError(f"bad resize sizes {src_h}x{src_w} -> {dst_h}x{dst_w}")
    return n


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
    cdef uint8_t[::1] tv
    cdef int64_t h = sv.shape[0], w = sv.shape[1]
    cdef int64_t H = dv.shape[0], W = dv.shape[1]
    cdef int64_t need
    cdef int rc
    cdef bint allow_simd = bool(simd)
    cdef bint do_mirror = bool(mirror)
    cdef uint8_t *scratch_ptr
    cdef int64_t scratch_len
    if sv.shape[2] != 3 or dv.shape[2] != 3:
        raise ValueError("src and dst must have 3 channels (shape (h, w, 3))")
    if sv.strides[2] != 1 or sv.strides[1] != 3 or sv.strides[0] < 3 * w:
        raise ValueError("src pixel rows must be packed RGB: strides (>= 3*w, 3, 1)")
    need = ffcvx_resize_scratch_bytes(h, w, H, W)
    if need < 0:
        raise ValueError(f"bad resize sizes {h}x{w} -> {H}x{W}")
    if scratch is None:
        import numpy
        scratch = numpy.empty(need, dtype=numpy.uint8)
    tv = scratch
    scratch_len = tv.shape[0]
    scratch_ptr = &tv[0] if scratch_len > 0 else NULL
    with nogil:
        rc = _resize(&sv[0, 0, 0], h, w, sv.strides[0], &dv[0, 0, 0], H, W,
                     scratch_ptr, scratch_len, allow_simd, do_mirror)
    if rc == RESIZE_SCRATCH_TOO_SMALL:
        raise ValueError(f"scratch has {scratch_len} bytes, resize needs {need}")
    if rc != RESIZE_OK:
        raise ValueError(f"ffcvx_resize_rgb rejected {h}x{w} -> {H}x{W} (status {rc})")
    return dst
