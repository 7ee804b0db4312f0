#include "BrowserResponse.h"

#include "HttpHead.h"

namespace lamplighter {

QByteArray BrowserResponse::toHttpResponse(bool closeConnection) const
{
    const bool ownBody = !body.isEmpty();
    const QByteArray content = ownBody             ? body
                               : message.isEmpty() ? QByteArray()
                                                   : message.toUtf8() + '\n';
    QByteArray response =
        "HTTP/1.1 " + QByteArray::number(code) + ' ' + standardReasonPhrase(code) + "\r\n";
    if (ownBody)
        response += "Content-Type: " + contentType + "\r\n";
    else if (!content.isEmpty())
        response += "Content-Type: text/plain; charset=utf-8\r\n";
    response += "Cache-Control: no-store\r\n";
    response += "X-Content-Type-Options: nosniff\r\n";
    // The launch ticket is in the URL of the page that receives the redirect.
    response += "Referrer-Policy: no-referrer\r\n";
    for (const HttpHeader &header : headers)
        response += header.name + ": " + header.value + "\r\n";
    response += "Content-Length: " + QByteArray::number(content.size()) + "\r\n";
    if (closeConnection)
        response += "Connection: close\r\n";
    response += "\r\n";
    response += content;
    return response;
}

} // namespace lamplighter
