/* MTCNN's image pyramid: OpenCV's area interpolation of a uint8 image at fractional scales,
 * the same pixels bit for bit, every level from one pass over the source.
 *
 * OpenCV (cv::resize, INTER_AREA, both scales >= 1 and not both integers) builds a table of
 * (source index, destination index, weight) per axis, sums each source row horizontally into
 * a float row buffer (buf[d] += src[s] * w, in the table's order, starting from 0), then sums
 * those rows vertically (sum = w * buf for a destination row's first source row, then
 * sum += w * buf), and rounds half to even into uint8. Its horizontal pass walks the table
 * one tap at a time for every row, in scalar code, and reads the whole image for every level:
 * the astronaut's ten levels take 10 ms of one core.
 *
 * Here the same float operations run in the same order for every destination value, so the
 * result is identical, but on a transposed band of source rows: the band's column x is one
 * contiguous run of rows x channels, and a horizontal tap becomes one vector multiply and add
 * over that run for every row of the band at once. The band is transposed once and every
 * level is taken from it. Multiplies and adds are kept separate (built with
 * -ffp-contract=off: a fused multiply-add rounds once and would change the sums).
 *
 * Python (both release the GIL while they work):
 * - area_pyramid(src, levels): src a C-contiguous (H, W, 3) uint8 buffer, levels a sequence of
 *   writable C-contiguous (h, w, 3) uint8 buffers, each h <= H and w <= W, (H / h, W / w) not
 *   both integers (OpenCV takes other paths for those);
 * - area_crops(image, boxes, out): the windows (left, top, w, h) of the image, black outside
 *   it, each at least S x S, resized into out (N, S, S, 3) float32 as OpenCV resizes the float
 *   crop (the same sums, not rounded).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BAND_ROWS 32
/* The resize is compiled twice, for AVX2 and for the baseline, and the loader picks what the
 * CPU runs (astronaut, ten levels, one thread: 1.7 ms with the AVX2 clone, 2.6 with the
 * baseline, OpenCV 10.5). An AVX-512 clone was no faster (1.62 against 1.64 ms): the loads
 * and stores bound it, not the arithmetic. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif
#define INLINE static inline __attribute__((always_inline))
#define CN 3 /* RGB */
#define STRIDE (BAND_ROWS * CN) /* floats a column of a band takes */

typedef struct {
    int src; /* source index (pixels) */
    int dst; /* destination index (pixels) */
    float weight;
} Tap;

/* The taps of one axis, as OpenCV's area table: destination pixel d covers source
 * [d * scale, (d + 1) * scale), a partial first and last source pixel weighted by their
 * covered share (dropped under 1e-3), every weight divided by the cell's width. */
static int area_taps(int ssize, int dsize, double scale, Tap *taps)
{
    int k = 0;
    for (int d = 0; d < dsize; d++) {
        double f1 = d * scale;
        double f2 = f1 + scale;
        double cell = scale < ssize - f1 ? scale : ssize - f1;
        int s1 = (int)ceil(f1);
        int s2 = (int)floor(f2);
        if (s2 > ssize - 1)
            s2 = ssize - 1;
        if (s1 > s2)
            s1 = s2;
        if (s1 - f1 > 1e-3) {
            taps[k].dst = d;
            taps[k].src = s1 - 1;
            taps[k++].weight = (float)((s1 - f1) / cell);
        }
        for (int s = s1; s < s2; s++) {
            taps[k].dst = d;
            taps[k].src = s;
            taps[k++].weight = (float)(1.0 / cell);
        }
        if (f2 - s2 > 1e-3) {
            double part = f2 - s2 < 1.0 ? f2 - s2 : 1.0;
            if (part > cell)
                part = cell;
            taps[k].dst = d;
            taps[k].src = s2;
            taps[k++].weight = (float)(part / cell);
        }
    }
    return k;
}

typedef struct {
    unsigned char *out; /* (h, w, C), rounded; or */
    float *fout;        /* (h, w, C), as summed */
    int h, w;
    Tap *xtaps, *ytaps;
    int nx, ny;
    int next;      /* next vertical tap */
    int row;       /* destination row being summed */
    float *band;   /* (w, BAND_ROWS * C): the band's rows summed horizontally, transposed */
    float *rows;   /* (BAND_ROWS, w * C): the same, in row order */
    float *sum;    /* (w * C): the destination row being summed */
} Level;

/* The band's columns summed into each destination column: for every destination column, its
 * taps in the table's order, over the whole run of rows x channels at once. Lanes are kept in
 * registers LANES at a time; the run is padded to a multiple of LANES. */
#define LANES 16

INLINE void horizontal(const Level *restrict lv, const float *restrict cols, int run)
{
    const Tap *taps = lv->xtaps;
    int k = 0;
    while (k < lv->nx) {
        int d = taps[k].dst, n = 1;
        while (k + n < lv->nx && taps[k + n].dst == d)
            n++;
        float *restrict acc = lv->band + (size_t)d * STRIDE;
        for (int i0 = 0; i0 < run; i0 += LANES) {
            float a[LANES];
            const float *col = cols + (size_t)taps[k].src * STRIDE + i0;
            float w = taps[k].weight;
            for (int j = 0; j < LANES; j++)
                a[j] = 0.0f + col[j] * w;
            for (int t = 1; t < n; t++) {
                col = cols + (size_t)taps[k + t].src * STRIDE + i0;
                w = taps[k + t].weight;
                for (int j = 0; j < LANES; j++)
                    a[j] = a[j] + col[j] * w;
            }
            for (int j = 0; j < LANES; j++)
                acc[i0 + j] = a[j];
        }
        k += n;
    }
}

INLINE void store_row(const Level *restrict lv)
{
    const float *restrict sum = lv->sum;
    int n = lv->w * CN;
    if (lv->fout != NULL) {
        memcpy(lv->fout + (size_t)lv->row * n, sum, sizeof(float) * (size_t)n);
        return;
    }
    unsigned char *restrict out = lv->out + (size_t)lv->row * n;
    const float magic = 8388608.0f; /* 2^23: adding and subtracting it rounds half to even */
    for (int i = 0; i < n; i++) {
        int v = (int)((sum[i] + magic) - magic);
        out[i] = (unsigned char)(v < 0 ? 0 : (v > 255 ? 255 : v));
    }
}

INLINE void vertical(Level *restrict lv, int first, int end)
{
    int wc = lv->w * CN;
    float *restrict rows = lv->rows;
    /* The band's rows back in row order (rows x w x C), for contiguous vertical sums, eight
     * columns at a time (their band runs stay in the L1 cache while every row takes its
     * piece). A pixel is copied as four floats (one vector move): the fourth lands on the next
     * pixel's first channel, written next; a row's last pixel is copied channel by channel.
     * Copied a float at a time, column by column, this took 28% of the pyramid's time: this
     * way the astronaut's levels took 1.34-1.35 ms against 1.53-1.56, 142 RNet-sized crops
     * 1.25-1.30 against 1.35-1.37 (one thread, alternating, medians of 300). */
    for (int x0 = 0; x0 < lv->w; x0 += 8) {
        int x1 = x0 + 8 < lv->w ? x0 + 8 : lv->w;
        int last = x1 == lv->w;
        for (int y = 0; y < end - first; y++) {
            float *restrict to = rows + (size_t)y * wc;
            const float *restrict from = lv->band + y * CN;
            int x = x0;
            for (; x < x1 - last; x++)
                memcpy(to + x * CN, from + (size_t)x * STRIDE, 4 * sizeof(float));
            for (; x < x1; x++)
                for (int c = 0; c < CN; c++)
                    to[x * CN + c] = from[(size_t)x * STRIDE + c];
        }
    }
    for (; lv->next < lv->ny && lv->ytaps[lv->next].src < end; lv->next++) {
        const Tap *t = &lv->ytaps[lv->next];
        const float *restrict src = rows + (size_t)(t->src - first) * wc;
        float w = t->weight;
        float *restrict sum = lv->sum;
        if (t->dst != lv->row) {
            store_row(lv);
            lv->row = t->dst;
            for (int i = 0; i < wc; i++)
                sum[i] = w * src[i];
        } else {
            for (int i = 0; i < wc; i++)
                sum[i] = sum[i] + w * src[i];
        }
    }
}

static inline int clamp(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

INLINE void black(float *pixel)
{
    for (int c = 0; c < CN; c++)
        pixel[c] = 0.0f;
}

/* The source: a window of the image, (left, top) to (left + w, top + h); pixels outside the
 * image read as black. */
typedef struct {
    const unsigned char *data; /* (height, width, C) */
    int height, width;
    int left, top, w, h;
} Window;

CLONES static void resize(const Window *restrict win, Level *levels, int count,
                          float *restrict cols)
{
    for (int first = 0; first < win->h; first += BAND_ROWS) {
        int end = first + BAND_ROWS < win->h ? first + BAND_ROWS : win->h;
        int run = ((end - first) * CN + LANES - 1) / LANES * LANES;
        for (int y = first; y < end; y++) {
            float *restrict to = cols + (size_t)(y - first) * CN;
            int sy = win->top + y;
            /* The window's columns [x0, x1) lie inside the image; the rest read as black. */
            int inside = sy >= 0 && sy < win->height;
            int x0 = inside ? clamp(-win->left, 0, win->w) : win->w;
            int x1 = inside ? clamp(win->width - win->left, x0, win->w) : win->w;
            for (int x = 0; x < x0; x++)
                black(to + (size_t)x * STRIDE);
            if (x1 > x0) {
                const unsigned char *restrict row =
                    win->data + ((size_t)sy * win->width + win->left + x0) * CN;
                for (int x = x0; x < x1; x++)
                    for (int c = 0; c < CN; c++)
                        to[(size_t)x * STRIDE + c] = (float)row[(x - x0) * CN + c];
            }
            for (int x = x1; x < win->w; x++)
                black(to + (size_t)x * STRIDE);
        }
        for (int l = 0; l < count; l++) {
            horizontal(&levels[l], cols, run);
            vertical(&levels[l], first, end);
        }
    }
    for (int l = 0; l < count; l++)
        store_row(&levels[l]);
}

/* OpenCV's scale: the inverse of its inverse scale dst / src. */
static void start_level(Level *lv, int src_h, int src_w)
{
    lv->nx = area_taps(src_w, lv->w, 1.0 / ((double)lv->w / src_w), lv->xtaps);
    lv->ny = area_taps(src_h, lv->h, 1.0 / ((double)lv->h / src_h), lv->ytaps);
    lv->next = 0;
    lv->row = lv->ytaps[0].dst;
    memset(lv->sum, 0, sizeof(float) * (size_t)lv->w * CN);
}

static PyObject *area_pyramid(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *src_obj, *levels_obj;
    if (!PyArg_ParseTuple(args, "OO", &src_obj, &levels_obj))
        return NULL;
    PyObject *seq = PySequence_Fast(levels_obj, "levels must be a sequence of buffers");
    if (seq == NULL)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    Py_buffer src;
    if (PyObject_GetBuffer(src_obj, &src, PyBUF_C_CONTIGUOUS | PyBUF_ND) < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    Py_buffer *views = PyMem_Calloc(count ? count : 1, sizeof(Py_buffer));
    Level *levels = PyMem_Calloc(count ? count : 1, sizeof(Level));
    Py_ssize_t got = 0;
    PyObject *result = NULL;
    float *cols = NULL;
    if (views == NULL || levels == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (src.ndim != 3 || src.itemsize != 1 || src.shape[0] < 1 || src.shape[1] < 1 ||
        src.shape[2] != CN || src.shape[0] > INT_MAX / 2 || src.shape[1] > INT_MAX / 8) {
        PyErr_SetString(PyExc_ValueError, "src must be a (H, W, 3) uint8 buffer");
        goto done;
    }
    int height = (int)src.shape[0], width = (int)src.shape[1];
    for (; got < count; got++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, got);
        if (PyObject_GetBuffer(item, &views[got],
                               PyBUF_C_CONTIGUOUS | PyBUF_ND | PyBUF_WRITABLE) < 0)
            goto done;
        Py_buffer *v = &views[got];
        if (v->ndim != 3 || v->itemsize != 1 || v->shape[2] != CN || v->shape[0] < 1 ||
            v->shape[1] < 1 || v->shape[0] > height || v->shape[1] > width) {
            PyErr_SetString(PyExc_ValueError,
                            "each level must be a writable (h, w, 3) uint8 buffer no larger "
                            "than src");
            got++;
            goto done;
        }
    }
    for (Py_ssize_t l = 0; l < count; l++) {
        Level *lv = &levels[l];
        lv->out = views[l].buf;
        lv->h = (int)views[l].shape[0];
        lv->w = (int)views[l].shape[1];
        lv->xtaps = PyMem_Malloc(sizeof(Tap) * (size_t)(2 * width + 2));
        lv->ytaps = PyMem_Malloc(sizeof(Tap) * (size_t)(2 * height + 2));
        lv->band = PyMem_Malloc(sizeof(float) * (size_t)lv->w * STRIDE);
        lv->rows = PyMem_Malloc(sizeof(float) * (size_t)lv->w * STRIDE);
        lv->sum = PyMem_Calloc((size_t)lv->w * CN, sizeof(float));
        if (!lv->xtaps || !lv->ytaps || !lv->band || !lv->rows || !lv->sum) {
            PyErr_NoMemory();
            goto done;
        }
        start_level(lv, height, width);
    }
    /* Zeroed: the lanes past a short last band are computed, never used. */
    cols = PyMem_Calloc((size_t)width * STRIDE, sizeof(float));
    if (cols == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Window win = {src.buf, height, width, 0, 0, width, height};
    Py_BEGIN_ALLOW_THREADS
    resize(&win, levels, (int)count, cols);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(cols);
    for (Py_ssize_t l = 0; levels != NULL && l < count; l++) {
        PyMem_Free(levels[l].xtaps);
        PyMem_Free(levels[l].ytaps);
        PyMem_Free(levels[l].band);
        PyMem_Free(levels[l].rows);
        PyMem_Free(levels[l].sum);
    }
    for (Py_ssize_t l = 0; l < got; l++)
        if (views[l].obj != NULL)
            PyBuffer_Release(&views[l]);
    PyMem_Free(views);
    PyMem_Free(levels);
    PyBuffer_Release(&src);
    Py_DECREF(seq);
    return result;
}

/* area_crops(image, boxes, out): out[n] = the window boxes[n] = (left, top, w, h) of image
 * (black outside it) resized to out's (S, S) as OpenCV resizes the float crop: the same sums,
 * not rounded. Every window must be at least S x S. */
static PyObject *area_crops(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *src_obj, *boxes_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OOO", &src_obj, &boxes_obj, &out_obj))
        return NULL;
    Py_buffer src = {0}, boxes = {0}, out = {0};
    PyObject *result = NULL;
    Level lv = {0};
    float *cols = NULL;
    if (PyObject_GetBuffer(src_obj, &src, PyBUF_C_CONTIGUOUS | PyBUF_ND) < 0)
        goto done;
    if (PyObject_GetBuffer(boxes_obj, &boxes, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_ND) < 0)
        goto done;
    if (PyObject_GetBuffer(out_obj, &out, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_ND |
                                              PyBUF_WRITABLE) < 0)
        goto done;
    if (src.ndim != 3 || src.itemsize != 1 || src.shape[2] != CN || src.shape[0] > INT_MAX / 2 ||
        src.shape[1] > INT_MAX / 8) {
        PyErr_SetString(PyExc_ValueError, "image must be a (H, W, 3) uint8 buffer");
        goto done;
    }
    if (boxes.ndim != 2 || boxes.shape[1] != 4 || boxes.itemsize != 8 ||
        strchr("qlQL", boxes.format[strlen(boxes.format) - 1]) == NULL) {
        PyErr_SetString(PyExc_ValueError, "boxes must be (N, 4) int64 left, top, w, h");
        goto done;
    }
    if (out.ndim != 4 || out.shape[0] != boxes.shape[0] || out.shape[1] < 1 ||
        out.shape[2] != out.shape[1] || out.shape[3] != CN || out.itemsize != 4 ||
        strcmp(out.format, "f") != 0) {
        PyErr_SetString(PyExc_ValueError, "out must be (N, S, S, 3) float32, N boxes");
        goto done;
    }
    const long long *box = boxes.buf;
    Py_ssize_t n = boxes.shape[0];
    int size = (int)out.shape[1];
    long long max_w = 1, max_h = 1;
    for (Py_ssize_t k = 0; k < n; k++) {
        long long l = box[4 * k], t = box[4 * k + 1], w = box[4 * k + 2], h = box[4 * k + 3];
        if (w < size || h < size || w > INT_MAX / 8 || h > INT_MAX / 2 || l < -(INT_MAX / 4) ||
            t < -(INT_MAX / 4) || l > INT_MAX / 4 || t > INT_MAX / 4) {
            PyErr_Format(PyExc_ValueError, "box %zd (%lld, %lld, %lld, %lld) is not at least %d x %d",
                         k, l, t, w, h, size, size);
            goto done;
        }
        max_w = w > max_w ? w : max_w;
        max_h = h > max_h ? h : max_h;
    }
    lv.w = lv.h = size;
    lv.xtaps = PyMem_Malloc(sizeof(Tap) * (size_t)(2 * max_w + 2));
    lv.ytaps = PyMem_Malloc(sizeof(Tap) * (size_t)(2 * max_h + 2));
    lv.band = PyMem_Malloc(sizeof(float) * (size_t)size * STRIDE);
    lv.rows = PyMem_Malloc(sizeof(float) * (size_t)size * STRIDE);
    lv.sum = PyMem_Malloc(sizeof(float) * (size_t)size * CN);
    cols = PyMem_Calloc((size_t)max_w * STRIDE, sizeof(float));
    if (!lv.xtaps || !lv.ytaps || !lv.band || !lv.rows || !lv.sum || !cols) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < n; k++) {
        Window win = {src.buf,          (int)src.shape[0],    (int)src.shape[1],
                      (int)box[4 * k],  (int)box[4 * k + 1], (int)box[4 * k + 2],
                      (int)box[4 * k + 3]};
        lv.fout = (float *)out.buf + (size_t)k * size * size * CN;
        start_level(&lv, win.h, win.w);
        resize(&win, &lv, 1, cols);
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(cols);
    PyMem_Free(lv.xtaps);
    PyMem_Free(lv.ytaps);
    PyMem_Free(lv.band);
    PyMem_Free(lv.rows);
    PyMem_Free(lv.sum);
    if (out.obj != NULL)
        PyBuffer_Release(&out);
    if (boxes.obj != NULL)
        PyBuffer_Release(&boxes);
    if (src.obj != NULL)
        PyBuffer_Release(&src);
    return result;
}

static PyMethodDef methods[] = {
    {"area_pyramid", area_pyramid, METH_VARARGS,
     "area_pyramid(src, levels): resize src into every level buffer as OpenCV's INTER_AREA "
     "does at fractional scales, bit for bit."},
    {"area_crops", area_crops, METH_VARARGS,
     "area_crops(image, boxes, out): the (left, top, w, h) windows of image, black outside it, "
     "resized into out (N, S, S, 3) float32 as OpenCV's INTER_AREA resizes the float crops."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_area",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__area(void) { return PyModule_Create(&module); }
