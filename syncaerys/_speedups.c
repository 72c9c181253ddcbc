/*
 * Optional C speedups for syncaerys.
 *
 * apply_mask(data, mask, /) -> bytes: XOR ``data`` with the 4-byte ``mask``
 * repeated (RFC 6455 5.3). ``data`` is any object with the buffer protocol,
 * contiguous or not. The pure-Python fallback is syncaerys.protocol.mask;
 * both must give the same results and raise the same exception types.
 *
 * send_nowait(fd, data, /) -> int: a non-blocking send(2) of ``data`` on the
 * socket ``fd`` that keeps the GIL for small writes (see SEND_RELEASE_AT).
 * recv_nowait_into(fd, buffer, /) -> int: a non-blocking recv(2) into
 * ``buffer`` that keeps the GIL; -1 when nothing is there yet. The fallback
 * is socket.send / socket.recv_into with MSG_DONTWAIT (syncaerys.transport).
 *
 * Build is optional (see setup.py); nothing here is required at runtime.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>

#ifndef _WIN32
#include <sys/socket.h>
#include <sys/types.h>
#define HAVE_NOWAIT_IO 1
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif
#endif

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

#ifdef HAVE_NOWAIT_IO
/* A non-blocking send of a few kilobytes is a copy into the socket buffer:
 * microseconds. Releasing the GIL around it is what socket.send does, and
 * with other threads waiting for the GIL each release is a likely hand-off:
 * the sender then sleeps until the GIL comes back (two context switches per
 * send). So small writes keep the GIL; from this size the copy itself is long
 * enough that letting other threads run meanwhile is worth the hand-off. */
#define SEND_RELEASE_AT (128 * 1024)

static int
fd_argument(PyObject *arg, int *fd)
{
    long value = PyLong_AsLong(arg);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (value < 0 || value > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "invalid file descriptor");
        return -1;
    }
    *fd = (int)value;
    return 0;
}

PyDoc_STRVAR(send_nowait_doc,
"send_nowait(fd, data, /)\n"
"--\n"
"\n"
"Write what socket ``fd`` takes of ``data`` now; return the number of bytes\n"
"written, 0 when the socket buffer is full. Raises OSError when the socket\n"
"failed. Keeps the GIL unless ``data`` is large.");

static PyObject *
send_nowait(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data;
    int fd;
    ssize_t sent;
    int error;

    (void)module;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "send_nowait() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (fd_argument(args[0], &fd) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    do {
        if (data.len >= SEND_RELEASE_AT) {
            Py_BEGIN_ALLOW_THREADS
            sent = send(fd, data.buf, (size_t)data.len, MSG_DONTWAIT | MSG_NOSIGNAL);
            Py_END_ALLOW_THREADS
        }
        else {
            sent = send(fd, data.buf, (size_t)data.len, MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        error = errno;
    } while (sent < 0 && error == EINTR);
    PyBuffer_Release(&data);
    if (sent < 0) {
        if (error == EAGAIN || error == EWOULDBLOCK) {
            return PyLong_FromLong(0);
        }
        errno = error;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromSsize_t(sent);
}

PyDoc_STRVAR(recv_nowait_into_doc,
"recv_nowait_into(fd, buffer, /)\n"
"--\n"
"\n"
"Read what socket ``fd`` has now into the writable ``buffer``; return the\n"
"number of bytes read, 0 at EOF, -1 when nothing is there yet. Raises\n"
"OSError when the socket failed. Keeps the GIL.");

static PyObject *
recv_nowait_into(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer buffer;
    int fd;
    ssize_t received;
    int error;

    (void)module;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "recv_nowait_into() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (fd_argument(args[0], &fd) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &buffer, PyBUF_WRITABLE) < 0) {
        return NULL;
    }
    do {
        received = recv(fd, buffer.buf, (size_t)buffer.len, MSG_DONTWAIT);
        error = errno;
    } while (received < 0 && error == EINTR);
    PyBuffer_Release(&buffer);
    if (received < 0) {
        if (error == EAGAIN || error == EWOULDBLOCK) {
            return PyLong_FromLong(-1);
        }
        errno = error;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromSsize_t(received);
}
#endif

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL, apply_mask_doc},
#ifdef HAVE_NOWAIT_IO
    {"send_nowait", (PyCFunction)(void (*)(void))send_nowait, METH_FASTCALL, send_nowait_doc},
    {"recv_nowait_into", (PyCFunction)(void (*)(void))recv_nowait_into, METH_FASTCALL, recv_nowait_into_doc},
#endif
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
    "Optional C implementations of hot paths (see syncaerys.protocol.mask and syncaerys.transport).",
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
