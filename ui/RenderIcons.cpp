// lamplighter-render-icons: renders the tray's SVG icons into raw pixels at fixed sizes while
// Lamplighter is built. The tray then draws them without Qt's SVG library, its icon engine and
// the image format plugins, which took 0.7 MiB or more of its resident memory.
//
// Usage: lamplighter-render-icons OUTPUT_FOLDER SIZES SVG_FILE...
// where SIZES is a comma-separated list of pixel sizes. Each SVG_FILE NAME.svg becomes
// OUTPUT_FOLDER/NAME-SIZE.argb32 for every size: SIZE * SIZE pixels of QImage's
// Format_ARGB32_Premultiplied, row after row, with no header.

#include <QDir>
#include <QFileInfo>
#include <QGuiApplication>
#include <QImage>
#include <QImageReader>
#include <QSaveFile>
#include <QStringList>
#include <cstdio>

namespace {

int fail(const QString &message)
{
    std::fprintf(stderr, "lamplighter-render-icons: %s\n", qPrintable(message));
    return 1;
}

} // namespace

int main(int argc, char *argv[])
{
    QGuiApplication app(argc, argv);
    const QStringList arguments = QGuiApplication::arguments().mid(1);
    if (arguments.size() < 3)
        return fail(
            QStringLiteral("usage: lamplighter-render-icons OUTPUT_FOLDER SIZES SVG_FILE..."));

    const QDir output(arguments[0]);
    if (!output.mkpath(QStringLiteral(".")))
        return fail(QStringLiteral("cannot create the output folder %1").arg(arguments[0]));
    QList<int> sizes;
    for (const QString &text : arguments[1].split(u',')) {
        bool valid = false;
        const int size = text.toInt(&valid);
        if (!valid || size < 1 || size > 1024)
            return fail(QStringLiteral("invalid size \"%1\" in \"%2\", expected pixel sizes "
                                       "from 1 to 1024 separated by commas")
                            .arg(text, arguments[1]));
        sizes.append(size);
    }

    for (const QString &svg : arguments.mid(2)) {
        for (int size : sizes) {
            QImageReader reader(svg, "svg");
            reader.setScaledSize(QSize(size, size));
            const QImage image = reader.read().convertToFormat(QImage::Format_ARGB32_Premultiplied);
            if (image.isNull())
                return fail(QStringLiteral("cannot render %1 at %2 pixels: %3. Qt's SVG image "
                                           "plugin (Debian: libqt6svg6) must be installed.")
                                .arg(svg)
                                .arg(size)
                                .arg(reader.errorString()));
            const QString path = output.filePath(
                QStringLiteral("%1-%2.argb32").arg(QFileInfo(svg).completeBaseName()).arg(size));
            QSaveFile file(path);
            const bool saved = file.open(QIODevice::WriteOnly) &&
                               file.write(reinterpret_cast<const char *>(image.constBits()),
                                          image.sizeInBytes()) == image.sizeInBytes() &&
                               file.commit();
            if (!saved)
                return fail(QStringLiteral("cannot write %1: %2").arg(path, file.errorString()));
        }
    }
    return 0;
}
