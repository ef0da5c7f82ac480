/*
 * snn_ref.c - reference integrate-and-fire network in plain C99, with SNN Workbench semantics.
 *
 *   cc -O2 -std=c99 -o snn_ref snn_ref.c -lm
 *   ./snn_ref PARAMS_DIR INPUT.bin STEPS OUT_DIR
 *
 * PARAMS_DIR: `snn-workbench export-params NETWORK PARAMS_DIR --format raw` (manifest.txt and
 *             little-endian L<i>.<array>.bin files).
 * INPUT.bin:  float32 little-endian samples [B][H][W][C] (channels-last); B = size / (4*H*W*C).
 * OUT_DIR:    created if missing; receives a raw trace (trace.txt, steps.bin, layer<k>.*.bin) that
 *             `snn-workbench compare` reads. See docs/trace-format.md.
 *
 * Semantics (workbench/engine: layer_state.py, synapses.py, neurons/if_neuron.py), per timestep,
 * layers in file order (topological), no synaptic delay:
 *   input     y = x                                   (constant-current encoder)
 *   dense     J = b;  J += y_in[i] * W[i][o]  for non-zero inputs in index order   (float32)
 *   conv2d    J = b;  every non-zero input (row-major over H, W, C) scattered into the outputs
 *             whose window holds it, TF 'same' padding (pad = top, left)         (float32)
 *   avg_pool  J = in_scale * (sum over the window's inputs inside the image) / (their count),
 *             accumulated in double, stored as float (padding is excluded from the count)
 *   max_pool  counts += y_in (double); y = this step's y_in of the window input with the
 *             highest count so far (first in row-major window order on ties); no neurons
 *   flatten   y = y_in (row-major HWC: the same memory)
 *   neurons   J *= gain (when the manifest gives one: rate scaling); v += dt * J (float32); spike if v >= threshold; reset: subtract / zero / modulo;
 *             y = spike * out_scale
 * Only the layers above; a sequential chain (one inbound per layer). The constant encoder only.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <direct.h>
#define MKDIR(p) _mkdir(p)
#else
#include <sys/stat.h>
#define MKDIR(p) mkdir((p), 0777)
#endif

/* No fused multiply-add: results must equal the float32 reference. GCC in ISO C mode
 * (-std=c99) already does not contract; clang needs to be told. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

enum kind { K_INPUT, K_DENSE, K_CONV, K_AVGPOOL, K_MAXPOOL, K_FLATTEN };
enum reset { R_SUBTRACT, R_ZERO, R_MODULO };

#define MAX_LAYERS 256
#define MAX_PATH 4096

typedef struct {
    enum kind kind;
    char name[128];
    int inbound;
    int ndim, dims[3];  /* shape as in the manifest (1..3 values) */
    int h, w, c;        /* the same as H, W, C (vectors: 1, 1, N) */
    int kh, kw, sh, sw, pt, pl;
    float threshold, out_scale, in_scale, gain;
    enum reset reset;
    int neuron;
    char weights_file[256], bias_file[256];
    float *weights, *bias;
    /* state */
    float *y, *v, *J, *spikes;
    double *counts;     /* max pooling: cumulative input counts, input-sized */
    int rec;            /* index among recorded (neuron) layers */
    FILE *f_spikes, *f_membrane, *f_current;
} layer_t;

static layer_t L[MAX_LAYERS];
static int n_layers = 0;
static float dt = 1.0f;

static void die(const char *what, const char *detail) {
    fprintf(stderr, "snn_ref: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(2);
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) die("out of memory", NULL);
    return p;
}

static int size_of(const layer_t *l) { return l->h * l->w * l->c; }

static int parse_ints(const char *s, int *out, int max) {
    int n = 0;
    while (*s && n < max) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s) break;
        out[n++] = (int)v;
        s = (*end == ',') ? end + 1 : end;
    }
    return n;
}

static void parse_layer(char *line, const char *manifest) {
    layer_t *l = &L[n_layers];
    int pair[2];
    char *tok;
    memset(l, 0, sizeof *l);
    l->inbound = -1;
    l->kh = l->kw = l->sh = l->sw = 1;
    l->in_scale = 1.0f;
    l->gain = 1.0f;
    l->rec = -1;
    for (tok = strtok(line, " \t\r\n"); tok; tok = strtok(NULL, " \t\r\n")) {
        char *val = strchr(tok, '=');
        if (!val) continue; /* the leading word "layer" */
        *val++ = '\0';
        if (!strcmp(tok, "kind")) {
            if (!strcmp(val, "input")) l->kind = K_INPUT;
            else if (!strcmp(val, "dense")) l->kind = K_DENSE;
            else if (!strcmp(val, "conv2d")) l->kind = K_CONV;
            else if (!strcmp(val, "avg_pool2d")) l->kind = K_AVGPOOL;
            else if (!strcmp(val, "max_pool2d")) l->kind = K_MAXPOOL;
            else if (!strcmp(val, "flatten")) l->kind = K_FLATTEN;
            else die("unsupported layer kind (dense, conv2d, avg_pool2d, max_pool2d, flatten only)", val);
        } else if (!strcmp(tok, "name")) {
            strncpy(l->name, val, sizeof l->name - 1);
        } else if (!strcmp(tok, "in")) {
            if (strchr(val, ',')) die("layers with more than one inbound layer are not supported", val);
            l->inbound = atoi(val);
        } else if (!strcmp(tok, "shape")) {
            l->ndim = parse_ints(val, l->dims, 3);
            if (l->ndim == 3) { l->h = l->dims[0]; l->w = l->dims[1]; l->c = l->dims[2]; }
            else if (l->ndim == 1) { l->h = 1; l->w = 1; l->c = l->dims[0]; }
            else die("shape must have 1 or 3 values", val);
        } else if (!strcmp(tok, "kernel") || !strcmp(tok, "pool")) {
            if (parse_ints(val, pair, 2) == 2) { l->kh = pair[0]; l->kw = pair[1]; }
        } else if (!strcmp(tok, "strides")) {
            if (parse_ints(val, pair, 2) == 2) { l->sh = pair[0]; l->sw = pair[1]; }
        } else if (!strcmp(tok, "pad")) {
            if (parse_ints(val, pair, 2) == 2) { l->pt = pair[0]; l->pl = pair[1]; }
        } else if (!strcmp(tok, "in_scale")) {
            l->in_scale = (float)strtod(val, NULL);
        } else if (!strcmp(tok, "neuron")) {
            if (strcmp(val, "if")) die("only the 'if' neuron model is supported, got", val);
            l->neuron = 1;
        } else if (!strcmp(tok, "threshold")) {
            l->threshold = (float)strtod(val, NULL);
        } else if (!strcmp(tok, "gain")) {
            l->gain = (float)strtod(val, NULL);
        } else if (!strcmp(tok, "out_scale")) {
            l->out_scale = (float)strtod(val, NULL);
        } else if (!strcmp(tok, "reset")) {
            if (!strcmp(val, "subtract")) l->reset = R_SUBTRACT;
            else if (!strcmp(val, "zero")) l->reset = R_ZERO;
            else if (!strcmp(val, "modulo")) l->reset = R_MODULO;
            else die("unknown reset", val);
        } else if (!strcmp(tok, "weights") || !strcmp(tok, "bias")) {
            char *colon = strchr(val, ':');
            if (colon) {
                if (strcmp(colon + 1, "float32")) die("weights and bias must be float32", val);
                *colon = '\0';
            }
            strncpy(!strcmp(tok, "weights") ? l->weights_file : l->bias_file, val, 255);
        }
    }
    if (!l->ndim) die("layer without shape in", manifest);
    if (l->kind != K_INPUT && (l->inbound < 0 || l->inbound >= n_layers)) die("bad inbound layer in", manifest);
    n_layers++;
}

static float *read_floats(const char *dir, const char *file, size_t count) {
    char path[MAX_PATH];
    FILE *f;
    long size;
    float *data;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    f = fopen(path, "rb");
    if (!f) die("cannot open", path);
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (size != (long)(count * sizeof(float))) die("file has the wrong size for its layer", path);
    data = xcalloc(count, sizeof(float));
    if (fread(data, sizeof(float), count, f) != count) die("cannot read", path);
    fclose(f);
    return data;
}

static void load_network(const char *dir) {
    char path[MAX_PATH], line[8192];
    FILE *f;
    int i;
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    f = fopen(path, "r");
    if (!f) die("cannot open", path);
    if (!fgets(line, sizeof line, f) || strncmp(line, "snn-workbench-params 1", 22)) die("not a parameter manifest", path);
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "layer ", 6)) {
            if (n_layers == MAX_LAYERS) die("too many layers in", path);
            parse_layer(line, path);
        } else if (!strncmp(line, "dt ", 3)) {
            dt = (float)strtod(line + 3, NULL);
        } else if (!strncmp(line, "encoder ", 8) && strncmp(line + 8, "constant", 8)) {
            die("only the constant encoder is supported", line + 8);
        }
    }
    fclose(f);
    if (n_layers < 2 || L[0].kind != K_INPUT) die("the first layer must be the input in", path);
    for (i = 1; i < n_layers; i++) {
        layer_t *l = &L[i];
        const layer_t *in = &L[l->inbound];
        if (l->kind == K_DENSE) {
            l->weights = read_floats(dir, l->weights_file, (size_t)size_of(in) * l->c);
            l->bias = read_floats(dir, l->bias_file, (size_t)l->c);
        } else if (l->kind == K_CONV) {
            l->weights = read_floats(dir, l->weights_file, (size_t)l->kh * l->kw * in->c * l->c);
            l->bias = read_floats(dir, l->bias_file, (size_t)l->c);
        }
        if ((l->kind == K_DENSE || l->kind == K_CONV || l->kind == K_AVGPOOL) != l->neuron)
            die("neuron settings do not fit the layer kind of", l->name);
    }
}

/* ---- synapses ---------------------------------------------------------------------------- */

static void dense(const layer_t *l, const float *x, int nin, float *out) {
    int i, o, nout = l->c;
    for (o = 0; o < nout; o++) out[o] = l->bias[o];
    for (i = 0; i < nin; i++) {
        float xi = x[i];
        if (xi == 0.0f) continue;
        for (o = 0; o < nout; o++) out[o] += xi * l->weights[(size_t)i * nout + o];
    }
}

static void conv2d(const layer_t *l, const layer_t *in, const float *x, float *out) {
    int iy, ix, ci, ky, kx, co, oy, ox, cin = in->c, cout = l->c;
    for (oy = 0; oy < l->h * l->w; oy++)
        for (co = 0; co < cout; co++) out[oy * cout + co] = l->bias[co];
    for (iy = 0; iy < in->h; iy++)
        for (ix = 0; ix < in->w; ix++)
            for (ci = 0; ci < cin; ci++) {
                float v = x[(iy * in->w + ix) * cin + ci];
                if (v == 0.0f) continue;
                for (ky = 0; ky < l->kh; ky++) {
                    int ty = iy + l->pt - ky;
                    if (ty < 0 || ty % l->sh != 0) continue;
                    oy = ty / l->sh;
                    if (oy >= l->h) continue;
                    for (kx = 0; kx < l->kw; kx++) {
                        int tx = ix + l->pl - kx;
                        const float *w;
                        float *o;
                        if (tx < 0 || tx % l->sw != 0) continue;
                        ox = tx / l->sw;
                        if (ox >= l->w) continue;
                        w = &l->weights[((size_t)(ky * l->kw + kx) * cin + ci) * cout];
                        o = &out[(oy * l->w + ox) * cout];
                        for (co = 0; co < cout; co++) o[co] += v * w[co];
                    }
                }
            }
}

static void avg_pool(const layer_t *l, const layer_t *in, const float *x, float *out) {
    int oy, ox, c, ky, kx;
    for (oy = 0; oy < l->h; oy++)
        for (ox = 0; ox < l->w; ox++)
            for (c = 0; c < l->c; c++) {
                double acc = 0.0;
                int n = 0;
                for (ky = 0; ky < l->kh; ky++) {
                    int iy = oy * l->sh - l->pt + ky;
                    if (iy < 0 || iy >= in->h) continue;
                    for (kx = 0; kx < l->kw; kx++) {
                        int ix = ox * l->sw - l->pl + kx;
                        if (ix < 0 || ix >= in->w) continue;
                        acc += x[(iy * in->w + ix) * in->c + c];
                        n++;
                    }
                }
                out[(oy * l->w + ox) * l->c + c] = (float)((double)l->in_scale * acc / (double)(n > 0 ? n : 1));
            }
}

static void max_pool(const layer_t *l, const layer_t *in, const float *x, double *counts, float *out) {
    int i, oy, ox, c, ky, kx;
    for (i = 0; i < size_of(in); i++) counts[i] += x[i];
    for (oy = 0; oy < l->h; oy++)
        for (ox = 0; ox < l->w; ox++)
            for (c = 0; c < l->c; c++) {
                double best = -INFINITY;
                float val = 0.0f;
                for (ky = 0; ky < l->kh; ky++) {
                    int iy = oy * l->sh - l->pt + ky;
                    if (iy < 0 || iy >= in->h) continue;
                    for (kx = 0; kx < l->kw; kx++) {
                        int ix = ox * l->sw - l->pl + kx;
                        int k = (iy * in->w + ix) * in->c + c;
                        if (ix < 0 || ix >= in->w) continue;
                        if (counts[k] > best) { best = counts[k]; val = x[k]; }
                    }
                }
                out[(oy * l->w + ox) * l->c + c] = val;
            }
}

/* ---- neurons ----------------------------------------------------------------------------- */

static void if_neurons(layer_t *l, int offset, int n) {
    int i;
    for (i = offset; i < offset + n; i++) {
        float vi;
        if (l->gain != 1.0f) l->J[i] *= l->gain;
        vi = l->v[i] + dt * l->J[i];
        if (vi >= l->threshold) {
            l->spikes[i] = 1.0f;
            if (l->reset == R_SUBTRACT) vi = vi - l->threshold;
            else if (l->reset == R_ZERO) vi = 0.0f;
            else vi = vi - l->threshold * floorf(vi / l->threshold);
        } else {
            l->spikes[i] = 0.0f;
        }
        l->v[i] = vi;
        l->y[i] = l->spikes[i] * l->out_scale;
    }
}

/* ---- trace output ------------------------------------------------------------------------ */

static FILE *open_out(const char *dir, const char *file) {
    char path[MAX_PATH];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    f = fopen(path, "wb");
    if (!f) die("cannot write", path);
    return f;
}

static void write_manifest(const char *dir, int batch, int steps) {
    FILE *f = open_out(dir, "trace.txt");
    int i, d;
    fprintf(f, "snn-workbench-trace 1\n# written by workbench/bundled/c_reference/snn_ref.c\nbatch %d\nsteps %d\n", batch, steps);
    for (i = 0; i < n_layers; i++) {
        if (!L[i].neuron) continue;
        fprintf(f, "layer %s %d", L[i].name, L[i].ndim);
        for (d = 0; d < L[i].ndim; d++) fprintf(f, " %d", L[i].dims[d]);
        fprintf(f, " spikes,membrane,current\n");
    }
    fclose(f);
}

int main(int argc, char **argv) {
    const char *params, *input_file, *out_dir;
    FILE *f, *f_steps;
    long size;
    int batch, steps, t, b, i, k, rec = 0, nin;
    float *x;
    char name[64];
    if (argc != 5) {
        fprintf(stderr, "usage: %s PARAMS_DIR INPUT.bin STEPS OUT_DIR\n", argv[0]);
        return 2;
    }
    params = argv[1]; input_file = argv[2]; out_dir = argv[4];
    steps = atoi(argv[3]);
    if (steps < 1) die("STEPS must be a whole number >= 1", argv[3]);
    { uint16_t one = 1; if (*(unsigned char *)&one != 1) die("big-endian hosts are not supported", NULL); }
    load_network(params);

    nin = size_of(&L[0]);
    f = fopen(input_file, "rb");
    if (!f) die("cannot open", input_file);
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (size <= 0 || size % ((long)sizeof(float) * nin)) die("input size is not a whole number of samples", input_file);
    batch = (int)(size / ((long)sizeof(float) * nin));
    x = xcalloc((size_t)batch * nin, sizeof(float));
    if (fread(x, sizeof(float), (size_t)batch * nin, f) != (size_t)batch * nin) die("cannot read", input_file);
    fclose(f);

    if (MKDIR(out_dir) != 0 && errno != EEXIST) die("cannot create", out_dir);
    write_manifest(out_dir, batch, steps);
    f_steps = open_out(out_dir, "steps.bin");
    for (i = 0; i < n_layers; i++) {
        layer_t *l = &L[i];
        size_t n = (size_t)batch * size_of(l);
        l->y = xcalloc(n, sizeof(float));
        if (l->neuron) {
            l->v = xcalloc(n, sizeof(float));
            l->J = xcalloc(n, sizeof(float));
            l->spikes = xcalloc(n, sizeof(float));
            l->rec = rec++;
            snprintf(name, sizeof name, "layer%d.spikes.bin", l->rec);
            l->f_spikes = open_out(out_dir, name);
            snprintf(name, sizeof name, "layer%d.membrane.bin", l->rec);
            l->f_membrane = open_out(out_dir, name);
            snprintf(name, sizeof name, "layer%d.current.bin", l->rec);
            l->f_current = open_out(out_dir, name);
        }
        if (l->kind == K_MAXPOOL) l->counts = xcalloc((size_t)batch * size_of(&L[l->inbound]), sizeof(double));
        if (l->kind == K_FLATTEN && size_of(l) != size_of(&L[l->inbound])) die("flatten changes the size of", l->name);
    }

    for (t = 1; t <= steps; t++) {
        int64_t step = t;
        for (i = 0; i < n_layers; i++) {
            layer_t *l = &L[i];
            const layer_t *in = l->kind == K_INPUT ? NULL : &L[l->inbound];
            int n = size_of(l);
            for (b = 0; b < batch; b++) {
                const float *xin = in ? in->y + (size_t)b * size_of(in) : NULL;
                switch (l->kind) {
                case K_INPUT: memcpy(l->y + (size_t)b * n, x + (size_t)b * n, n * sizeof(float)); break;
                case K_FLATTEN: memcpy(l->y + (size_t)b * n, xin, n * sizeof(float)); break;
                case K_DENSE: dense(l, xin, size_of(in), l->J + (size_t)b * n); break;
                case K_CONV: conv2d(l, in, xin, l->J + (size_t)b * n); break;
                case K_AVGPOOL: avg_pool(l, in, xin, l->J + (size_t)b * n); break;
                case K_MAXPOOL: max_pool(l, in, xin, l->counts + (size_t)b * size_of(in), l->y + (size_t)b * n); break;
                }
                if (l->neuron) if_neurons(l, b * n, n);
            }
            if (l->neuron) {
                size_t total = (size_t)batch * n;
                for (k = 0; k < (int)total; k++) {
                    int16_t s = (int16_t)l->spikes[k];
                    fwrite(&s, sizeof s, 1, l->f_spikes);
                }
                fwrite(l->v, sizeof(float), total, l->f_membrane);
                fwrite(l->J, sizeof(float), total, l->f_current);
            }
        }
        fwrite(&step, sizeof step, 1, f_steps);
    }
    fclose(f_steps);
    for (i = 0; i < n_layers; i++)
        if (L[i].neuron) { fclose(L[i].f_spikes); fclose(L[i].f_membrane); fclose(L[i].f_current); }
    return 0;
}
