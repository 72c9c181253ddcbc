/*
 * Optional C speedups for syncaerys.
 *
 * apply_mask(data, mask, /) -> bytes: XOR ``data`` with the 4-byte ``mask``
 * repeated (RFC 6455 5.3). ``data`` is any object with the buffer protocol,
 * contiguous or not. The pure-Python fallback is syncaerys.protocol.mask;
 * both must give the same results and raise the same exception types.
 *
 * unmask_in_place(buffer, mask, /) -> None: the same XOR, in a writable
 * contiguous buffer (a frame received into a buffer of its own size).
 *
 * parse_frame(buffer, pos, flags, limit, /): one client frame's header checked
 * and its payload unmasked (and, for a whole text message in one frame,
 * decoded); the pure-Python version with the same contract, and the contract
 * itself, are in syncaerys.protocol.framing. Tests run both on every input.
 *
 * Build is optional (see setup.py); nothing here is required at runtime.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

/* From this size on the GIL is released while masking, so that other threads
 * (other clients) run meanwhile. The XOR runs at tens of GB/s, so for smaller
 * inputs the release gains little, and taking the GIL back when other threads
 * run Python costs up to a switch interval (5 ms): with 4 threads masking and
 * running Python, releasing at 64 KiB and 256 KiB lowered throughput (by up to
 * 37%), at 1 MiB it was -8% to +36%, at 2 and 4 MiB +37% to +52%. */
#define RELEASE_GIL_AT (1024 * 1024)

/* XOR len bytes of in with the mask into out; in may equal out. The first
 * byte of in is at mask phase 0. Words are moved with memcpy, which compilers
 * turn into single loads/stores, so no pointer is ever dereferenced unaligned.
 * The loop aligns the input (a memoryview may start anywhere); the output, a
 * new bytes object, is aligned alike when the input is. */
static void
xor_mask(unsigned char *out, const unsigned char *in, Py_ssize_t len, const unsigned char mask[4])
{
    Py_ssize_t i = 0;

    /* Bytewise until in is 8-byte aligned, so the word loads are aligned. */
    while (i < len && ((uintptr_t)(in + i) & 7) != 0) {
        out[i] = in[i] ^ mask[i & 3];
        i++;
    }
    if (len - i >= 8) {
        /* The mask as it lines up from offset i on: 8 bytes, built bytewise so
         * that the result does not depend on the machine's byte order. */
        unsigned char rotated[8];
        uint64_t key, a, b, c, d;
        int j;
        for (j = 0; j < 8; j++) {
            rotated[j] = mask[(i + j) & 3];
        }
        memcpy(&key, rotated, 8);
        for (; len - i >= 32; i += 32) {
            memcpy(&a, in + i, 8);
            memcpy(&b, in + i + 8, 8);
            memcpy(&c, in + i + 16, 8);
            memcpy(&d, in + i + 24, 8);
            a ^= key;
            b ^= key;
            c ^= key;
            d ^= key;
            memcpy(out + i, &a, 8);
            memcpy(out + i + 8, &b, 8);
            memcpy(out + i + 16, &c, 8);
            memcpy(out + i + 24, &d, 8);
        }
        for (; len - i >= 8; i += 8) {
            memcpy(&a, in + i, 8);
            a ^= key;
            memcpy(out + i, &a, 8);
        }
    }
    for (; i < len; i++) {
        out[i] = in[i] ^ mask[i & 3];
    }
}

PyDoc_STRVAR(apply_mask_doc,
"apply_mask($module, data, mask, /)\n"
"--\n"
"\n"
"Return ``data`` XORed with the 4-byte ``mask`` repeated (RFC 6455 5.3).\n"
"\n"
"``data`` is any bytes-like object (contiguous or not); the GIL is released\n"
"while large inputs are processed. Raises TypeError for non-buffers and\n"
"ValueError when ``mask`` is not 4 bytes long.");

static PyObject *
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, mask;
    PyObject *result = NULL;
    unsigned char key[4];
    unsigned char *out;

    (void)module;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "apply_mask() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &mask, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (mask.len != 4) {
        PyErr_Format(PyExc_ValueError, "mask must be 4 bytes long, not %zd", mask.len);
        PyBuffer_Release(&mask);
        return NULL;
    }
    memcpy(key, mask.buf, 4);
    PyBuffer_Release(&mask);

    /* Strides are asked for so that non-contiguous memoryviews are accepted. */
    if (PyObject_GetBuffer(args[0], &data, PyBUF_STRIDED_RO) < 0) {
        return NULL;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL) {
        goto done;
    }
    out = (unsigned char *)PyBytes_AS_STRING(result);
    if (PyBuffer_IsContiguous(&data, 'C')) {
        if (data.len >= RELEASE_GIL_AT) {
            /* The exporter cannot resize or free its memory while the buffer is held. */
            Py_BEGIN_ALLOW_THREADS
            xor_mask(out, (const unsigned char *)data.buf, data.len, key);
            Py_END_ALLOW_THREADS
        }
        else {
            xor_mask(out, (const unsigned char *)data.buf, data.len, key);
        }
    }
    else {
        /* Gathered with the GIL held: PyBuffer_ToContiguous may allocate. */
        if (PyBuffer_ToContiguous(out, &data, data.len, 'C') < 0) {
            Py_CLEAR(result);
            goto done;
        }
        if (data.len >= RELEASE_GIL_AT) {
            Py_BEGIN_ALLOW_THREADS
            xor_mask(out, out, data.len, key);
            Py_END_ALLOW_THREADS
        }
        else {
            xor_mask(out, out, data.len, key);
        }
    }
done:
    PyBuffer_Release(&data);
    return result;
}

PyDoc_STRVAR(unmask_in_place_doc,
"unmask_in_place($module, buffer, mask, /)\n"
"--\n"
"\n"
"XOR the writable contiguous ``buffer`` with the 4-byte ``mask`` repeated, in\n"
"place (RFC 6455 5.3). The GIL is released for large buffers. Raises TypeError\n"
"for a read-only or non-contiguous buffer, ValueError when ``mask`` is not 4\n"
"bytes long.");

static PyObject *
unmask_in_place(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, mask;
    unsigned char key[4];

    (void)module;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "unmask_in_place() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &mask, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (mask.len != 4) {
        PyErr_Format(PyExc_ValueError, "mask must be 4 bytes long, not %zd", mask.len);
        PyBuffer_Release(&mask);
        return NULL;
    }
    memcpy(key, mask.buf, 4);
    PyBuffer_Release(&mask);
    if (PyObject_GetBuffer(args[0], &data, PyBUF_WRITABLE) < 0) {
        if (PyErr_ExceptionMatches(PyExc_BufferError)) {
            /* As the pure-Python version: the caller passed the wrong kind of object. */
            PyErr_SetString(PyExc_TypeError, "unmask_in_place() needs a writable, contiguous buffer");
        }
        return NULL;
    }
    if (data.len >= RELEASE_GIL_AT) {
        Py_BEGIN_ALLOW_THREADS
        xor_mask((unsigned char *)data.buf, (const unsigned char *)data.buf, data.len, key);
        Py_END_ALLOW_THREADS
    }
    else {
        xor_mask((unsigned char *)data.buf, (const unsigned char *)data.buf, data.len, key);
    }
    PyBuffer_Release(&data);
    Py_RETURN_NONE;
}

/* parse_frame's flags; the same values as syncaerys.protocol.framing's. The low
 * four bits are the opcode of the fragmented message in progress (0: none). */
#define FLAG_MESSAGE_OPCODE 0x0F
#define FLAG_RSV1_ALLOWED 0x10 /* permessage-deflate negotiated (RFC 7692 6) */
#define FLAG_TEXT_ONLY 0x20

/* Payloads up to this size are unmasked on the stack before they are decoded. */
#define STACK_TEXT 1024

/* The violation as parse_frame returns it: (code, reason). */
static PyObject *
violation(int code, const char *reason)
{
    return Py_BuildValue("(is)", code, reason);
}

/* XOR len bytes of in with the key into out, the GIL released for large ones. */
static void
unmask_copy(unsigned char *out, const unsigned char *in, Py_ssize_t len, const unsigned char key[4])
{
    if (len >= RELEASE_GIL_AT) {
        Py_BEGIN_ALLOW_THREADS
        xor_mask(out, in, len, key);
        Py_END_ALLOW_THREADS
    }
    else {
        xor_mask(out, in, len, key);
    }
}

/* The payload of a whole text message in one frame, as str; (1007, ...) if it is not UTF-8. */
static PyObject *
decode_text(const unsigned char *in, Py_ssize_t len, const unsigned char key[4])
{
    unsigned char stack[STACK_TEXT];
    unsigned char *plain = stack;
    PyObject *text;

    if (len > STACK_TEXT) {
        plain = PyMem_Malloc((size_t)len);
        if (plain == NULL) {
            return PyErr_NoMemory();
        }
    }
    unmask_copy(plain, in, len, key);
    text = PyUnicode_DecodeUTF8((const char *)plain, len, NULL);
    if (plain != stack) {
        PyMem_Free(plain);
    }
    if (text == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        return violation(1007, "Invalid TEXT data; UTF-8 required");
    }
    return text;
}

PyDoc_STRVAR(parse_frame_doc,
"parse_frame($module, buffer, pos, flags, limit, /)\n"
"--\n"
"\n"
"Parse the client frame at ``buffer[pos:]`` (RFC 6455 5.2). Returns an int\n"
"(the bytes from ``pos`` needed before calling again), ``(first, data, end)``\n"
"for a whole frame, or ``(code, reason)`` for a violation. See\n"
"syncaerys.protocol.framing for the contract.");

static PyObject *
parse_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    const unsigned char *p;
    Py_ssize_t size, pos, avail, header;
    unsigned long long length, limit, total;
    long flags;
    int first, second, opcode, fin, message_opcode;
    unsigned char key[4];
    PyObject *data = NULL, *result = NULL;

    (void)module;
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "parse_frame() takes exactly 4 arguments (%zd given)", nargs);
        return NULL;
    }
    pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred()) {
        return NULL;
    }
    flags = PyLong_AsLong(args[2]);
    if (flags == -1 && PyErr_Occurred()) {
        return NULL;
    }
    limit = PyLong_AsUnsignedLongLong(args[3]);
    if (limit == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    size = view.len;
    if (pos < 0 || pos > size) {
        PyErr_Format(PyExc_ValueError, "pos %zd is outside the buffer of %zd bytes", pos, size);
        goto done;
    }
    p = (const unsigned char *)view.buf + pos;
    avail = size - pos;
    if (avail < 2) {
        result = PyLong_FromLong(2);
        goto done;
    }
    first = p[0];
    second = p[1];
    length = (unsigned long long)(second & 0x7F);
    header = 6;
    if (length == 126) {
        header = 8;
        if (avail < 4) {
            result = PyLong_FromLong(4);
            goto done;
        }
        length = ((unsigned long long)p[2] << 8) | p[3];
    }
    else if (length == 127) {
        int i;
        header = 14;
        if (avail < 10) {
            result = PyLong_FromLong(10);
            goto done;
        }
        length = 0;
        for (i = 2; i < 10; i++) {
            length = (length << 8) | p[i];
        }
    }
    opcode = first & 0x0F;
    fin = (first & 0x80) != 0;
    message_opcode = (int)(flags & FLAG_MESSAGE_OPCODE);

    /* The checks, in the order of the pure-Python version (the first violated wins). */
    /* RFC 6455 5.2: RSV bits are 0 unless an extension says otherwise; RFC 7692 6:
     * RSV1 marks the first frame of a compressed data message. */
    if ((first & 0x70) && ((first & 0x30) || !(flags & FLAG_RSV1_ALLOWED) || (opcode != 1 && opcode != 2))) {
        result = violation(1002, "RSV must be 0 if no extensions are negotiated");
        goto done;
    }
    if (opcode > 2 && opcode < 8) {
        result = violation(1002, "Use of reserved non-control frame opcode");
        goto done;
    }
    if (opcode > 0xA) {
        result = violation(1002, "Use of reserved control frame opcode");
        goto done;
    }
    if (length >> 63) {
        result = violation(1002, "Most significant bit of 64-bit length field set");
        goto done;
    }
    /* RFC 6455 5.1: a server closes on an unmasked client frame. */
    if (!(second & 0x80)) {
        result = violation(1002, "Payload mask required");
        goto done;
    }
    if (opcode >= 8) {
        /* RFC 6455 5.5: control frames are at most 125 bytes and not fragmented. */
        if (!fin) {
            result = violation(1002, "Illegal control frame fragmentation");
            goto done;
        }
        if (length > 125) {
            result = violation(1002, "Control frame payload must be of maximum 125 bytes or less");
            goto done;
        }
    }
    else {
        if (opcode == 0 && !message_opcode) {
            result = violation(
                1002, "Illegal CONTINUATION opcode; initial message payload frame must be TEXT or BINARY");
            goto done;
        }
        if (opcode != 0 && message_opcode) {
            result = violation(1002,
                "Illegal data type opcode after unfinished previous data type frame; "
                "opcode MUST be CONTINUATION");
            goto done;
        }
        if (length > limit) {
            result = violation(1009, "Received payload exceeds maximum allowable size");
            goto done;
        }
        if ((flags & FLAG_TEXT_ONLY) && opcode == 2) {
            result = violation(1003, "BINARY opcodes (0x02) not accepted");
            goto done;
        }
    }
    total = (unsigned long long)header + length;
    if ((unsigned long long)avail < total) {
        /* The header first, so that the caller sees the mask key of a frame arriving in pieces. */
        result = avail < header ? PyLong_FromSsize_t(header) : PyLong_FromUnsignedLongLong(total);
        goto done;
    }
    memcpy(key, p + header - 4, 4);
    if (opcode == 1 && fin && !(first & 0x40)) {
        data = decode_text(p + header, (Py_ssize_t)length, key);
        if (data == NULL || PyTuple_Check(data)) {
            result = data; /* an error, or the 1007 violation */
            goto done;
        }
    }
    else {
        data = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)length);
        if (data == NULL) {
            goto done;
        }
        unmask_copy((unsigned char *)PyBytes_AS_STRING(data), p + header, (Py_ssize_t)length, key);
    }
    {
        /* Built by hand: Py_BuildValue parses its format string on every call (every frame). */
        PyObject *first_obj = PyLong_FromLong(first);
        PyObject *end_obj = first_obj == NULL ? NULL : PyLong_FromSsize_t(pos + (Py_ssize_t)total);
        if (end_obj == NULL) {
            Py_XDECREF(first_obj);
            Py_DECREF(data);
            goto done;
        }
        result = PyTuple_New(3);
        if (result == NULL) {
            Py_DECREF(first_obj);
            Py_DECREF(data);
            Py_DECREF(end_obj);
            goto done;
        }
        PyTuple_SET_ITEM(result, 0, first_obj);
        PyTuple_SET_ITEM(result, 1, data);
        PyTuple_SET_ITEM(result, 2, end_obj);
    }
done:
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL, apply_mask_doc},
    {"unmask_in_place", (PyCFunction)(void (*)(void))unmask_in_place, METH_FASTCALL, unmask_in_place_doc},
    {"parse_frame", (PyCFunction)(void (*)(void))parse_frame, METH_FASTCALL, parse_frame_doc},
    {NULL, NULL, 0, NULL},
};

/* The module has no state, so it can be loaded in subinterpreters and, on
 * free-threaded builds, does not need the GIL. */
static PyModuleDef_Slot speedups_slots[] = {
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "syncaerys._speedups",
    "Optional C implementations of hot paths (see syncaerys.protocol.mask and .framing).",
    0,
    speedups_methods,
    speedups_slots,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
