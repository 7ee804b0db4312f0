#include "SessionKey.h"

#include <QVarLengthArray>
#include <algorithm>
#include <openssl/crypto.h>
#include <openssl/rand.h>

namespace lamplighter {

Result<QByteArray> generateSessionKey()
{
    QByteArray bytes(32, Qt::Uninitialized);
    if (RAND_bytes(reinterpret_cast<unsigned char *>(bytes.data()), int(bytes.size())) != 1)
        return Error{QStringLiteral("The system's random number generator failed")};
    return bytes.toBase64(QByteArray::Base64UrlEncoding | QByteArray::OmitTrailingEquals);
}

bool constantTimeEquals(QByteArrayView expected, QByteArrayView presented)
{
    if (expected.isEmpty())
        return false;

    // Compare against a copy of `presented` cut or padded to the expected length, so that the
    // comparison runs over the same number of bytes whatever the presented length is. The copy
    // stays on the stack for a key of the usual size, because every request is checked.
    QVarLengthArray<char, 64> candidate(expected.size());
    std::fill(candidate.begin(), candidate.end(), '\0');
    std::copy_n(presented.data(), std::min(presented.size(), expected.size()), candidate.data());
    const bool sameBytes = CRYPTO_memcmp(candidate.constData(),
                                         expected.data(),
                                         static_cast<size_t>(expected.size())) == 0;
    const bool sameLength = presented.size() == expected.size();
    return sameBytes & sameLength;
}

SessionKeyCheck checkSessionKey(const HttpHead &request, const QByteArray &sessionKey)
{
    // Every request passes here, so the fields are read in place rather than copied.
    const HttpHeader *authorization = nullptr;
    for (const HttpHeader &header : request.headers) {
        if (!fieldNameEquals(header.name, "Authorization"))
            continue;
        if (authorization)
            return SessionKeyCheck::Invalid; // two Authorization fields
        authorization = &header;
    }
    if (!authorization)
        return SessionKeyCheck::Missing;

    const QByteArrayView value = QByteArrayView(authorization->value).trimmed();
    const qsizetype space = value.indexOf(' ');
    if (space < 0 || value.first(space).compare("bearer", Qt::CaseInsensitive) != 0)
        return SessionKeyCheck::Missing;
    const QByteArrayView token = value.sliced(space + 1).trimmed();
    if (token.isEmpty())
        return SessionKeyCheck::Missing;

    return constantTimeEquals(sessionKey, token) ? SessionKeyCheck::Accepted
                                                 : SessionKeyCheck::Invalid;
}

} // namespace lamplighter
