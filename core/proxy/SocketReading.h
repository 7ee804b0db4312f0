#pragma once

#include <QByteArray>
#include <QIODevice>
#include <algorithm>

namespace lamplighter {

// Reads at most maxBytes of what device has buffered. QIODevice::read(maxBytes) allocates
// maxBytes up front and keeps that capacity, which for a thousand quiet watch streams would
// hold tens of megabytes of mostly empty buffers.
inline QByteArray readAvailable(QIODevice *device, qint64 maxBytes)
{
    return device->read(std::min(device->bytesAvailable(), maxBytes));
}

} // namespace lamplighter
