#include "KubeconfigCheck.h"

#include "FuzzSupport.h"

#include <QRegularExpression>
#include <yaml-cpp/yaml.h>

namespace lamplighter::fuzz {

namespace {

// Returns true when a plain (unquoted) scalar with this text would not read as a string in
// YAML 1.1 or the YAML 1.2 core schema: a null, a boolean, an integer or a float.
bool readsAsOtherType(const std::string &text)
{
    static const QRegularExpression other(QStringLiteral(
        "^(~|null|Null|NULL|"
        "y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|"
        "[-+]?(0|[1-9][0-9_]*)|0[0-7_]+|0o[0-7]+|0x[0-9a-fA-F_]+|0b[01_]+|"
        "[-+]?([0-9][0-9_]*)?\\.[0-9_]*([eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*([eE][-+]?[0-9]+)|"
        "[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN)|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\\.[0-9_]*)?)$"));
    return other.match(QString::fromStdString(text)).hasMatch();
}

// Returns the scalar as a string, and requires that YAML readers of every version take it as
// one: quoted, or plain text that no schema reads as another type.
std::string stringScalar(const YAML::Node &node, const char *property)
{
    requireProperty(node.IsScalar(), property);
    const std::string text = node.Scalar();
    if (node.Tag() == "?")
        requireProperty(!readsAsOtherType(text), property, text);
    return text;
}

} // namespace

void checkKubeconfigRoundTrip(const Kubeconfig &kubeconfig)
{
    const QByteArray yaml = kubeconfig.toYaml();
    YAML::Node root;
    try {
        root = YAML::Load(yaml.toStdString());
    } catch (const YAML::Exception &) {
        failProperty("the kubeconfig is valid YAML");
    }

    const YAML::Node clusters = root["clusters"];
    const YAML::Node contexts = root["contexts"];
    requireProperty(clusters.IsSequence() && clusters.size() == kubeconfig.contexts.size(),
                    "the kubeconfig has one cluster per context");
    requireProperty(contexts.IsSequence() && contexts.size() == kubeconfig.contexts.size(),
                    "the kubeconfig has every context");
    for (std::size_t i = 0; i < kubeconfig.contexts.size(); ++i) {
        const KubeconfigContext &expected = kubeconfig.contexts[i];
        const std::string name = expected.name.toStdString();
        requireProperty(stringScalar(clusters[i]["name"], "a cluster name reads as a string") ==
                            name,
                        "a cluster name reads back unchanged");
        requireProperty(
            stringScalar(clusters[i]["cluster"]["server"], "a server URL reads as a string") ==
                expected.server.toString(QUrl::FullyEncoded).toStdString(),
            "a server URL reads back unchanged");
        const std::string authority =
            stringScalar(clusters[i]["cluster"]["certificate-authority-data"],
                         "certificate-authority-data reads as a string");
        requireProperty(QByteArray::fromBase64(QByteArray::fromStdString(authority)) ==
                            kubeconfig.certificateAuthorityPem,
                        "certificate-authority-data reads back as the proxy's certificate");
        requireProperty(stringScalar(contexts[i]["name"], "a context name reads as a string") ==
                            name,
                        "a context name reads back unchanged");
        requireProperty(stringScalar(contexts[i]["context"]["cluster"],
                                     "a context's cluster reads as a string") == name,
                        "a context names its cluster");
    }
    if (!kubeconfig.contexts.empty()) {
        requireProperty(
            stringScalar(root["current-context"], "current-context reads as a string") ==
                kubeconfig.contexts.front().name.toStdString(),
            "the first context is the current one");
    }
    const YAML::Node token = root["users"][0]["user"]["token"];
    requireProperty(stringScalar(token, "the session key reads as a string") ==
                        kubeconfig.sessionKey.toStdString(),
                    "the session key reads back unchanged");
}

} // namespace lamplighter::fuzz
