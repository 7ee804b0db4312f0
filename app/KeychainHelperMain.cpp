// lamplighter-keychain: runs keychain operations for the tray, so that libsecret, GIO and
// libgcrypt are loaded in this short-lived process and not in the tray. It reads requests from
// standard input and writes one reply for each to standard output, in the framing of
// store/KeychainAccess.h, and exits when its input ends.

#include "store/KeychainAccess.h"

#include <QCommandLineParser>
#include <QCoreApplication>
#include <QEventLoop>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unistd.h>

using namespace lamplighter;

namespace {

constexpr int exitInvalidInput = 2;

void printError(const QString &message)
{
    std::fprintf(stderr, "lamplighter-keychain: %s\n", qPrintable(message));
}

// Reads standard input until `buffer` contains a whole message and takes it. Returns nothing at
// the end of the input or when reading fails, with `error` set unless the input ended between
// two messages.
std::optional<keychainmessage::Message> readRequest(QByteArray &buffer, QString &error)
{
    for (;;) {
        std::optional<keychainmessage::Message> message = keychainmessage::take(buffer, error);
        if (message || !error.isEmpty())
            return message;
        char chunk[64 * 1024];
        const ssize_t received = ::read(STDIN_FILENO, chunk, sizeof chunk);
        if (received < 0 && errno == EINTR)
            continue;
        if (received < 0) {
            error = QStringLiteral("reading standard input failed: %1")
                        .arg(QString::fromLocal8Bit(std::strerror(errno)));
            return std::nullopt;
        }
        if (received == 0) {
            if (!buffer.isEmpty())
                error = QStringLiteral("standard input ended within a request");
            return std::nullopt;
        }
        buffer.append(chunk, received);
    }
}

bool writeAll(const QByteArray &bytes)
{
    qsizetype written = 0;
    while (written < bytes.size()) {
        const ssize_t sent =
            ::write(STDOUT_FILENO, bytes.constData() + written, size_t(bytes.size() - written));
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent <= 0)
            return false;
        written += sent;
    }
    return true;
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(QStringLiteral("lamplighter-keychain"));
    QCommandLineParser parser;
    parser.setApplicationDescription(
        QStringLiteral("Runs keychain operations for the Lamplighter tray. It reads requests on "
                       "standard input and replies on standard output; it is not meant to be "
                       "run by hand."));
    parser.addHelpOption();
    const QCommandLineOption serviceOption(QStringLiteral("service"),
                                           QStringLiteral("The keychain service name."),
                                           QStringLiteral("NAME"));
    parser.addOption(serviceOption);
    parser.process(app);
    const QString service = parser.value(serviceOption);
    if (service.isEmpty()) {
        printError(QStringLiteral("--service is required. See --help."));
        return exitInvalidInput;
    }

    InProcessKeychain keychain(service);
    QByteArray buffer;
    for (;;) {
        QString error;
        const std::optional<keychainmessage::Message> request = readRequest(buffer, error);
        if (!request) {
            if (error.isEmpty())
                return 0;
            printError(error);
            return exitInvalidInput;
        }

        const QString key = QString::fromUtf8(request->first);
        std::optional<KeychainReply> reply;
        QEventLoop loop;
        auto finish = [&reply, &loop](const KeychainReply &outcome) {
            reply = outcome;
            loop.quit();
        };
        if (request->word == "read") {
            keychain.read(key, finish);
        } else if (request->word == "write") {
            keychain.write(key, request->second, finish);
        } else if (request->word == "remove") {
            keychain.remove(key, finish);
        } else {
            printError(QStringLiteral("unknown request \"%1\", expected read, write or remove")
                           .arg(QString::fromLatin1(request->word.toPercentEncoding())));
            return exitInvalidInput;
        }
        if (!reply)
            loop.exec();

        if (!writeAll(keychainmessage::encode(keychainmessage::replyWord(reply->outcome),
                                              reply->errorString.toUtf8(),
                                              reply->secret))) {
            printError(QStringLiteral("writing standard output failed: %1")
                           .arg(QString::fromLocal8Bit(std::strerror(errno))));
            return 1;
        }
    }
}
