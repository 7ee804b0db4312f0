// Renders the Kubernetes manifests in packaging/kubernetes with the installed kubectl and checks
// what the security model relies on: hardened pods, the cluster proxy's exact RBAC rules, a
// Headlamp service account without any binding, and the wiring between the objects.

#include "clusterproxy/CertificateRotationConfig.h"
#include "tls/LocalCertificate.h"

#include <QByteArray>
#include <QFile>
#include <QProcess>
#include <QRegularExpression>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>
#include <algorithm>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>
#include <yaml-cpp/yaml.h>

namespace {

const std::string namespaceName = "lamplighter";
const std::string proxyName = "lamplighter-cluster-proxy";
const std::string headlampName = "headlamp";
const std::string tlsSecretName = "lamplighter-cluster-proxy-tls";
const std::string certsName = "lamplighter-cluster-proxy-certs";
const std::string configMapPrefix = "lamplighter-cluster-proxy-config";
const std::string serviceAccountFolder = "/var/run/secrets/kubernetes.io/serviceaccount";

// The packaging folder to check. LAMPLIGHTER_PACKAGING_DIR in the environment points the test at
// a scratch copy, for example to see a check fail without editing the repository.
QString packagingDir()
{
    const QByteArray fromEnvironment = qgetenv("LAMPLIGHTER_PACKAGING_DIR");
    if (!fromEnvironment.isEmpty())
        return QString::fromLocal8Bit(fromEnvironment);
    return QStringLiteral(LAMPLIGHTER_PACKAGING_DIR);
}

// yaml-cpp's operator[] throws for a key below a missing key (const) or inserts the key
// (non-const), and assigning one Node to another overwrites the first one's content. These
// helpers return an undefined node instead, rebind with reset(), and never change the document.
YAML::Node child(const YAML::Node &node, const std::string &key)
{
    if (!node.IsDefined() || !node.IsMap())
        return YAML::Node(YAML::NodeType::Undefined);
    const YAML::Node value = node[key];
    if (!value.IsDefined())
        return YAML::Node(YAML::NodeType::Undefined);
    return value;
}

YAML::Node at(const YAML::Node &node, std::initializer_list<std::string> path)
{
    YAML::Node current = node;
    for (const std::string &key : path)
        current.reset(child(current, key));
    return current;
}

std::vector<YAML::Node> items(const YAML::Node &node)
{
    std::vector<YAML::Node> values;
    if (!node.IsDefined() || !node.IsSequence())
        return values;
    for (const YAML::Node &item : node)
        values.push_back(item);
    return values;
}

YAML::Node first(const YAML::Node &node)
{
    const std::vector<YAML::Node> values = items(node);
    return values.empty() ? YAML::Node(YAML::NodeType::Undefined) : values.front();
}

std::string scalar(const YAML::Node &node)
{
    if (!node.IsDefined() || !node.IsScalar())
        return {};
    return node.as<std::string>();
}

std::optional<bool> boolean(const YAML::Node &node)
{
    if (!node.IsDefined() || !node.IsScalar())
        return std::nullopt;
    try {
        return node.as<bool>();
    } catch (const YAML::BadConversion &) {
        return std::nullopt;
    }
}

std::optional<long long> integer(const YAML::Node &node)
{
    if (!node.IsDefined() || !node.IsScalar())
        return std::nullopt;
    try {
        return node.as<long long>();
    } catch (const YAML::BadConversion &) {
        return std::nullopt;
    }
}

std::vector<std::string> strings(const YAML::Node &node)
{
    std::vector<std::string> values;
    for (const YAML::Node &item : items(node))
        values.push_back(scalar(item));
    return values;
}

bool contains(const std::vector<std::string> &values, const std::string &value)
{
    return std::find(values.begin(), values.end(), value) != values.end();
}

std::string name(const YAML::Node &object)
{
    return scalar(at(object, {"metadata", "name"}));
}

// Returns whether podLabels contain every label of matchLabels, which must not be empty.
bool selects(const YAML::Node &matchLabels, const YAML::Node &podLabels)
{
    if (!matchLabels.IsDefined() || !matchLabels.IsMap() || matchLabels.size() == 0)
        return false;
    for (const auto &entry : matchLabels) {
        const std::string key = entry.first.as<std::string>();
        if (scalar(child(podLabels, key)) != scalar(entry.second))
            return false;
    }
    return true;
}

// Returns the container's securityContext field if it is set, otherwise the pod's, because the
// container's field overrides the pod's.
YAML::Node
effectiveField(const YAML::Node &pod, const YAML::Node &container, const std::string &field)
{
    const YAML::Node fromContainer = at(container, {"securityContext", field});
    if (fromContainer.IsDefined() && !fromContainer.IsNull())
        return fromContainer;
    return at(pod, {"securityContext", field});
}

// Resolves a port given as a number or as the name of one of the container's ports.
std::optional<long long> containerPort(const YAML::Node &container, const YAML::Node &port)
{
    if (const auto number = integer(port))
        return number;
    for (const YAML::Node &declared : items(child(container, "ports"))) {
        if (scalar(child(declared, "name")) == scalar(port))
            return integer(child(declared, "containerPort"));
    }
    return std::nullopt;
}

bool isUnder(const std::string &path, const std::string &folder)
{
    const std::string prefix = folder.back() == '/' ? folder : folder + '/';
    return path.compare(0, prefix.size(), prefix) == 0;
}

// The containers and init containers of a pod spec, each with the field path that names it.
std::vector<std::pair<std::string, YAML::Node>> allContainers(const YAML::Node &pod)
{
    std::vector<std::pair<std::string, YAML::Node>> found;
    for (const char *list : {"initContainers", "containers"}) {
        for (const YAML::Node &container : items(child(pod, list)))
            found.emplace_back(std::string(list) + "[" + scalar(child(container, "name")) + "]",
                               container);
    }
    return found;
}

// References from a pod's volumes to objects of one kind ("configMap" or "secret"), both direct
// and in projected volumes. A direct secret volume names its Secret in secretName.
std::vector<YAML::Node> volumeSources(const YAML::Node &pod, const std::string &kind)
{
    std::vector<YAML::Node> found;
    for (const YAML::Node &volume : items(child(pod, "volumes"))) {
        if (child(volume, kind).IsDefined())
            found.push_back(child(volume, kind));
        for (const YAML::Node &source : items(at(volume, {"projected", "sources"}))) {
            if (child(source, kind).IsDefined())
                found.push_back(child(source, kind));
        }
    }
    return found;
}

YAML::Node loadFile(const QString &path, std::string *error)
{
    try {
        return YAML::LoadFile(path.toStdString());
    } catch (const YAML::Exception &exception) {
        *error = path.toStdString() + " is not readable YAML: " + exception.what();
        return YAML::Node(YAML::NodeType::Undefined);
    }
}

} // namespace

class TestKubernetesManifests : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();

    void expectedObjectsRendered();
    void noSecretRendered();
    void objectsInLamplighterNamespace();
    void namespaceEnforcesRestricted();

    void workloadReplicas_data();
    void workloadReplicas();
    void podSecurityContext_data();
    void podSecurityContext();
    void containerSecurityContext_data();
    void containerSecurityContext();
    void containerResources_data();
    void containerResources();
    void tmpIsEmptyDir_data();
    void tmpIsEmptyDir();
    void mountsAreReadOnly_data();
    void mountsAreReadOnly();
    void imagesArePinned_data();
    void imagesArePinned();
    void probes_data();
    void probes();

    void clusterProxyServiceAccountToken();
    void clusterProxyMountsTlsSecret();
    void clusterRoleGrantsExactRules();
    void clusterRoleBindingNamesProxy();
    void certsRoleGrantsExactRules();
    void certsRoleBindingNamesAccount();
    void certsAccountHasNoClusterBinding();
    void certsJobRunsOnce();
    void certsConfigTargetsRoleNamespace();
    void headlampServiceAccountUnbound();
    void headlampHoldsNoToken();
    void headlampUsesClusterProxy();

    void servicesRouteToPods_data();
    void servicesRouteToPods();
    void disruptionBudgetSelectsProxy();

    void clusterProxyConfigHasKeys();
    void clusterProxyConfigPathsMounted();
    void containerfileUserMatchesDeployment();

    void exampleIngressRoutesToProxy();
    void exampleNetworkPolicyAdmitsHeadlamp();

    // Headlamp plugins: init containers fill an emptyDir that Headlamp serves from -plugins-dir.
    void headlampPluginsFromInitContainers();
    void headlampPluginInstallersRunAsHeadlamp();
    void headlampPluginListHasChartShape();

private:
    YAML::Node object(const std::string &kind, const std::string &objectName) const;
    std::vector<YAML::Node> objectsOfKind(const std::string &kind) const;
    // The pod spec of the Deployment or CronJob of that name.
    YAML::Node podSpec(const std::string &workloadName) const;
    // "Deployment/NAME" or "CronJob/NAME", for messages.
    std::string workload(const std::string &workloadName) const;
    // The field path of the workload's pod spec, ending in '.'.
    std::string podSpecPath(const std::string &workloadName) const;
    YAML::Node generatedConfigMap() const;
    static void addWorkloadRows();

    std::vector<YAML::Node> m_objects;
};

void TestKubernetesManifests::initTestCase()
{
    const QString kubectl = QStandardPaths::findExecutable(QStringLiteral("kubectl"));
    QVERIFY2(!kubectl.isEmpty(),
             "kubectl not found on PATH. Install kubectl, whose kustomize subcommand renders "
             "packaging/kubernetes (this test was written against kubectl 1.32).");

    const QString manifests = packagingDir() + QStringLiteral("/kubernetes");
    QProcess kustomize;
    kustomize.start(kubectl, {QStringLiteral("kustomize"), manifests});
    QVERIFY2(kustomize.waitForStarted(), qPrintable(kubectl + QStringLiteral(" failed to start")));
    QVERIFY2(kustomize.waitForFinished(60000), "kubectl kustomize timed out after 60 s");
    const QByteArray errors = kustomize.readAllStandardError();
    QVERIFY2(kustomize.exitStatus() == QProcess::NormalExit && kustomize.exitCode() == 0,
             qPrintable(QStringLiteral("kubectl kustomize %1 failed: %2")
                            .arg(manifests, QString::fromLocal8Bit(errors))));

    const std::string output = kustomize.readAllStandardOutput().toStdString();
    try {
        for (const YAML::Node &document : YAML::LoadAll(output)) {
            if (document.IsMap())
                m_objects.push_back(document);
        }
    } catch (const YAML::Exception &error) {
        QFAIL(qPrintable(QStringLiteral("the output of kubectl kustomize is not valid YAML: %1")
                             .arg(QString::fromStdString(error.what()))));
    }
    for (const YAML::Node &rendered : m_objects)
        qInfo("rendered %s/%s", scalar(child(rendered, "kind")).c_str(), name(rendered).c_str());
}

YAML::Node TestKubernetesManifests::object(const std::string &kind,
                                           const std::string &objectName) const
{
    for (const YAML::Node &candidate : m_objects) {
        if (scalar(child(candidate, "kind")) == kind && name(candidate) == objectName)
            return candidate;
    }
    return YAML::Node(YAML::NodeType::Undefined);
}

std::vector<YAML::Node> TestKubernetesManifests::objectsOfKind(const std::string &kind) const
{
    std::vector<YAML::Node> found;
    for (const YAML::Node &candidate : m_objects) {
        if (scalar(child(candidate, "kind")) == kind)
            found.push_back(candidate);
    }
    return found;
}

YAML::Node TestKubernetesManifests::podSpec(const std::string &workloadName) const
{
    const YAML::Node deployment = object("Deployment", workloadName);
    if (deployment.IsDefined())
        return at(deployment, {"spec", "template", "spec"});
    return at(object("CronJob", workloadName), {"spec", "jobTemplate", "spec", "template", "spec"});
}

std::string TestKubernetesManifests::workload(const std::string &workloadName) const
{
    const bool isCronJob = object("CronJob", workloadName).IsDefined();
    return (isCronJob ? "CronJob/" : "Deployment/") + workloadName;
}

std::string TestKubernetesManifests::podSpecPath(const std::string &workloadName) const
{
    return object("CronJob", workloadName).IsDefined() ? "spec.jobTemplate.spec.template.spec."
                                                       : "spec.template.spec.";
}

// The ConfigMap that the cluster proxy's Deployment mounts. Kustomize appends a hash of the
// content to its name, so it is found through the Deployment's reference.
YAML::Node TestKubernetesManifests::generatedConfigMap() const
{
    for (const YAML::Node &reference : volumeSources(podSpec(proxyName), "configMap")) {
        const std::string referenced = scalar(child(reference, "name"));
        if (referenced.rfind(configMapPrefix, 0) == 0)
            return object("ConfigMap", referenced);
    }
    return YAML::Node(YAML::NodeType::Undefined);
}

void TestKubernetesManifests::addWorkloadRows()
{
    QTest::addColumn<QByteArray>("deployment");
    QTest::newRow("cluster proxy") << QByteArray(proxyName.c_str());
    QTest::newRow("headlamp") << QByteArray(headlampName.c_str());
    QTest::newRow("certs") << QByteArray(certsName.c_str());
}

void TestKubernetesManifests::expectedObjectsRendered()
{
    const std::vector<std::pair<std::string, std::string>> expected = {
        {"Namespace", namespaceName},
        {"ServiceAccount", proxyName},
        {"ClusterRole", proxyName},
        {"ClusterRoleBinding", proxyName},
        {"Deployment", proxyName},
        {"Service", proxyName},
        {"PodDisruptionBudget", proxyName},
        {"ServiceAccount", headlampName},
        {"Deployment", headlampName},
        {"Service", headlampName},
        {"ServiceAccount", certsName},
        {"Role", certsName},
        {"RoleBinding", certsName},
        {"CronJob", certsName},
    };
    for (const auto &[kind, objectName] : expected) {
        const std::string message =
            kind + "/" + objectName + " is missing from the output of kubectl kustomize";
        QVERIFY2(object(kind, objectName).IsDefined(), message.c_str());
    }
    QVERIFY2(generatedConfigMap().IsDefined(),
             "Deployment/lamplighter-cluster-proxy mounts no rendered ConfigMap whose name starts "
             "with lamplighter-cluster-proxy-config");
}

void TestKubernetesManifests::noSecretRendered()
{
    for (const YAML::Node &secret : objectsOfKind("Secret")) {
        const std::string message = "Secret/" + name(secret) +
                                    " is rendered, but no key material may live in the repository";
        QVERIFY2(false, message.c_str());
    }
}

void TestKubernetesManifests::objectsInLamplighterNamespace()
{
    const std::set<std::string> clusterScoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"};
    for (const YAML::Node &rendered : m_objects) {
        const std::string kind = scalar(child(rendered, "kind"));
        if (clusterScoped.count(kind) != 0)
            continue;
        const std::string message =
            kind + "/" + name(rendered) + ": metadata.namespace must be " + namespaceName;
        QVERIFY2(scalar(at(rendered, {"metadata", "namespace"})) == namespaceName, message.c_str());
    }
}

void TestKubernetesManifests::namespaceEnforcesRestricted()
{
    const YAML::Node labels = at(object("Namespace", namespaceName), {"metadata", "labels"});
    QVERIFY2(scalar(child(labels, "pod-security.kubernetes.io/enforce")) == "restricted",
             "Namespace/lamplighter: metadata.labels[pod-security.kubernetes.io/enforce] must be "
             "restricted");
}

void TestKubernetesManifests::workloadReplicas_data()
{
    QTest::addColumn<QByteArray>("deployment");
    QTest::addColumn<int>("replicas");
    // Headlamp keeps port forwards in the memory of one replica, so it runs alone.
    QTest::newRow("cluster proxy") << QByteArray(proxyName.c_str()) << 2;
    QTest::newRow("headlamp") << QByteArray(headlampName.c_str()) << 1;
}

void TestKubernetesManifests::workloadReplicas()
{
    QFETCH(QByteArray, deployment);
    QFETCH(int, replicas);
    const auto actual =
        integer(at(object("Deployment", deployment.toStdString()), {"spec", "replicas"}));
    const std::string message = "Deployment/" + deployment.toStdString() +
                                ": spec.replicas must be " + std::to_string(replicas);
    QVERIFY2(actual == replicas, message.c_str());
}

void TestKubernetesManifests::podSecurityContext_data()
{
    addWorkloadRows();
}

void TestKubernetesManifests::podSecurityContext()
{
    QFETCH(QByteArray, deployment);
    const std::string where =
        workload(deployment.toStdString()) + ": " + podSpecPath(deployment.toStdString());
    const YAML::Node pod = podSpec(deployment.toStdString());
    QVERIFY2(pod.IsDefined(), (where + " is missing").c_str());
    const YAML::Node context = child(pod, "securityContext");

    QVERIFY2(boolean(child(context, "runAsNonRoot")) == true,
             (where + "securityContext.runAsNonRoot must be true").c_str());
    const auto user = integer(child(context, "runAsUser"));
    QVERIFY2(user && *user > 0,
             (where + "securityContext.runAsUser must be a fixed uid other than 0").c_str());
    const auto group = integer(child(context, "runAsGroup"));
    QVERIFY2(group && *group > 0,
             (where + "securityContext.runAsGroup must be a fixed gid other than 0").c_str());
    QVERIFY2(scalar(at(context, {"seccompProfile", "type"})) == "RuntimeDefault",
             (where + "securityContext.seccompProfile.type must be RuntimeDefault").c_str());
    QVERIFY2(boolean(child(pod, "automountServiceAccountToken")) == false,
             (where + "automountServiceAccountToken must be false").c_str());
    QVERIFY2(boolean(child(pod, "hostNetwork")) != true,
             (where + "hostNetwork must not be true").c_str());
    QVERIFY2(boolean(child(pod, "hostPID")) != true, (where + "hostPID must not be true").c_str());
    QVERIFY2(boolean(child(pod, "hostIPC")) != true, (where + "hostIPC must not be true").c_str());
}

void TestKubernetesManifests::containerSecurityContext_data()
{
    addWorkloadRows();
}

void TestKubernetesManifests::containerSecurityContext()
{
    QFETCH(QByteArray, deployment);
    const YAML::Node pod = podSpec(deployment.toStdString());
    QVERIFY2(!items(child(pod, "containers")).empty(),
             (workload(deployment.toStdString()) + " has no containers").c_str());

    for (const auto &[path, container] : allContainers(pod)) {
        const std::string where =
            workload(deployment.toStdString()) + ": " + path + ".securityContext.";
        const YAML::Node context = child(container, "securityContext");

        QVERIFY2(boolean(child(context, "allowPrivilegeEscalation")) == false,
                 (where + "allowPrivilegeEscalation must be false").c_str());
        QVERIFY2(boolean(child(context, "privileged")) == false,
                 (where + "privileged must be false").c_str());
        QVERIFY2(boolean(child(context, "readOnlyRootFilesystem")) == true,
                 (where + "readOnlyRootFilesystem must be true").c_str());
        QVERIFY2(contains(strings(at(context, {"capabilities", "drop"})), "ALL"),
                 (where + "capabilities.drop must contain ALL").c_str());
        QVERIFY2(strings(at(context, {"capabilities", "add"})).empty(),
                 (where + "capabilities.add must be empty").c_str());

        // A container may override the pod's fields, so check the values that apply.
        QVERIFY2(boolean(effectiveField(pod, container, "runAsNonRoot")) == true,
                 (where + "runAsNonRoot, or the pod's, must be true").c_str());
        const auto user = integer(effectiveField(pod, container, "runAsUser"));
        QVERIFY2(user && *user > 0,
                 (where + "runAsUser, or the pod's, must be a uid other than 0").c_str());
        const auto group = integer(effectiveField(pod, container, "runAsGroup"));
        QVERIFY2(group && *group > 0,
                 (where + "runAsGroup, or the pod's, must be a gid other than 0").c_str());
        QVERIFY2(scalar(child(effectiveField(pod, container, "seccompProfile"), "type")) ==
                     "RuntimeDefault",
                 (where + "seccompProfile.type, or the pod's, must be RuntimeDefault").c_str());
    }
}

void TestKubernetesManifests::containerResources_data()
{
    addWorkloadRows();
}

void TestKubernetesManifests::containerResources()
{
    QFETCH(QByteArray, deployment);
    for (const auto &[path, container] : allContainers(podSpec(deployment.toStdString()))) {
        for (const char *kind : {"requests", "limits"}) {
            for (const char *resource : {"cpu", "memory"}) {
                const std::string message = workload(deployment.toStdString()) + ": " + path +
                                            ".resources." + kind + "." + resource + " must be set";
                QVERIFY2(!scalar(at(container, {"resources", kind, resource})).empty(),
                         message.c_str());
            }
        }
    }
}

void TestKubernetesManifests::tmpIsEmptyDir_data()
{
    addWorkloadRows();
}

void TestKubernetesManifests::tmpIsEmptyDir()
{
    QFETCH(QByteArray, deployment);
    const YAML::Node pod = podSpec(deployment.toStdString());
    for (const auto &[path, container] : allContainers(pod)) {
        const std::string where = workload(deployment.toStdString()) + ": " + path;
        std::string volumeName;
        for (const YAML::Node &mount : items(child(container, "volumeMounts"))) {
            if (scalar(child(mount, "mountPath")) == "/tmp")
                volumeName = scalar(child(mount, "name"));
        }
        QVERIFY2(!volumeName.empty(), (where + " mounts no volume at /tmp").c_str());

        bool isEmptyDir = false;
        for (const YAML::Node &volume : items(child(pod, "volumes"))) {
            if (scalar(child(volume, "name")) == volumeName)
                isEmptyDir = child(volume, "emptyDir").IsDefined();
        }
        QVERIFY2(isEmptyDir,
                 (where + " mounts volume " + volumeName + " at /tmp, which is not an emptyDir")
                     .c_str());
    }
}

void TestKubernetesManifests::mountsAreReadOnly_data()
{
    addWorkloadRows();
}

void TestKubernetesManifests::mountsAreReadOnly()
{
    QFETCH(QByteArray, deployment);
    const YAML::Node pod = podSpec(deployment.toStdString());
    std::set<std::string> emptyDirs;
    for (const YAML::Node &volume : items(child(pod, "volumes"))) {
        if (child(volume, "emptyDir").IsDefined())
            emptyDirs.insert(scalar(child(volume, "name")));
    }
    for (const auto &[path, container] : allContainers(pod)) {
        for (const YAML::Node &mount : items(child(container, "volumeMounts"))) {
            const std::string volume = scalar(child(mount, "name"));
            if (emptyDirs.count(volume) != 0)
                continue;
            const std::string message = workload(deployment.toStdString()) + ": " + path +
                                        ".volumeMounts[" + volume + "].readOnly must be true";
            QVERIFY2(boolean(child(mount, "readOnly")) == true, message.c_str());
        }
    }
}

void TestKubernetesManifests::imagesArePinned_data()
{
    addWorkloadRows();
}

void TestKubernetesManifests::imagesArePinned()
{
    QFETCH(QByteArray, deployment);
    // A tag after the last slash (a colon before it belongs to a registry port), or a digest.
    const QRegularExpression pinned(QStringLiteral("^[^@]+(:[^/:]+|@sha256:[0-9a-f]{64})$"));
    for (const auto &[path, container] : allContainers(podSpec(deployment.toStdString()))) {
        const std::string image = scalar(child(container, "image"));
        const std::string where =
            workload(deployment.toStdString()) + ": " + path + ".image " + image;
        const QString imageText = QString::fromStdString(image);
        QVERIFY2(pinned.match(imageText).hasMatch(),
                 (where + " must name a tag or digest").c_str());
        QVERIFY2(!imageText.endsWith(QStringLiteral(":latest")),
                 (where + " must not use the tag latest").c_str());
    }
}

void TestKubernetesManifests::probes_data()
{
    QTest::addColumn<QByteArray>("deployment");
    QTest::addColumn<QByteArray>("readinessPath");
    QTest::addColumn<QByteArray>("livenessPath");
    QTest::addColumn<QByteArray>("scheme");
    QTest::addColumn<int>("port");
    QTest::newRow("cluster proxy") << QByteArray(proxyName.c_str()) << QByteArray("/readyz")
                                   << QByteArray("/healthz") << QByteArray("HTTPS") << 8443;
    QTest::newRow("headlamp") << QByteArray(headlampName.c_str()) << QByteArray("/")
                              << QByteArray("/") << QByteArray("HTTP") << 4466;
}

void TestKubernetesManifests::probes()
{
    QFETCH(QByteArray, deployment);
    QFETCH(QByteArray, readinessPath);
    QFETCH(QByteArray, livenessPath);
    QFETCH(QByteArray, scheme);
    QFETCH(int, port);
    const YAML::Node container = first(child(podSpec(deployment.toStdString()), "containers"));
    const std::vector<std::pair<std::string, QByteArray>> probes = {
        {"readinessProbe", readinessPath},
        {"livenessProbe", livenessPath},
    };
    for (const auto &[probe, path] : probes) {
        const std::string where = "Deployment/" + deployment.toStdString() + ": containers[" +
                                  scalar(child(container, "name")) + "]." + probe + ".httpGet";
        const YAML::Node httpGet = at(container, {probe, "httpGet"});
        QVERIFY2(httpGet.IsDefined(), (where + " is missing").c_str());
        QVERIFY2(scalar(child(httpGet, "path")) == path.toStdString(),
                 (where + ".path must be " + path.toStdString()).c_str());
        QVERIFY2(scalar(child(httpGet, "scheme")) == scheme.toStdString(),
                 (where + ".scheme must be " + scheme.toStdString()).c_str());
        QVERIFY2(containerPort(container, child(httpGet, "port")) == port,
                 (where + ".port must lead to container port " + std::to_string(port)).c_str());
    }
}

void TestKubernetesManifests::clusterProxyServiceAccountToken()
{
    const YAML::Node pod = podSpec(proxyName);
    const std::string where = "Deployment/" + proxyName + ": spec.template.spec.";
    QVERIFY2(scalar(child(pod, "serviceAccountName")) == proxyName,
             (where + "serviceAccountName must be " + proxyName).c_str());

    std::string tokenVolume;
    for (const YAML::Node &volume : items(child(pod, "volumes"))) {
        for (const YAML::Node &source : items(at(volume, {"projected", "sources"}))) {
            const YAML::Node token = child(source, "serviceAccountToken");
            if (!token.IsDefined())
                continue;
            tokenVolume = scalar(child(volume, "name"));
            const std::string field =
                where + "volumes[" + tokenVolume + "].projected.sources.serviceAccountToken.";
            QVERIFY2(scalar(child(token, "path")) == "token",
                     (field + "path must be token").c_str());
            QVERIFY2(!child(token, "audience").IsDefined(),
                     (field + "audience must be unset, so that the token is issued for the API "
                              "server")
                         .c_str());
        }
    }
    QVERIFY2(!tokenVolume.empty(),
             (where + "volumes has no projected serviceAccountToken source").c_str());

    bool mountedReadOnly = false;
    const YAML::Node container = first(child(pod, "containers"));
    for (const YAML::Node &mount : items(child(container, "volumeMounts"))) {
        if (scalar(child(mount, "name")) == tokenVolume &&
            scalar(child(mount, "mountPath")) == serviceAccountFolder) {
            mountedReadOnly = boolean(child(mount, "readOnly")) == true;
        }
    }
    QVERIFY2(mountedReadOnly,
             (where + "containers[0] must mount volume " + tokenVolume + " read-only at " +
              serviceAccountFolder)
                 .c_str());
}

void TestKubernetesManifests::clusterProxyMountsTlsSecret()
{
    std::set<std::string> keys;
    for (const YAML::Node &secret : volumeSources(podSpec(proxyName), "secret")) {
        std::string secretName = scalar(child(secret, "name"));
        if (secretName.empty())
            secretName = scalar(child(secret, "secretName"));
        if (secretName != tlsSecretName)
            continue;
        const std::vector<YAML::Node> selected = items(child(secret, "items"));
        if (selected.empty()) {
            // Without items, every key of the Secret becomes a file.
            keys.insert({"tls.crt", "tls.key"});
        }
        for (const YAML::Node &item : selected)
            keys.insert(scalar(child(item, "key")));
    }
    for (const char *key : {"tls.crt", "tls.key"}) {
        const std::string message = "Deployment/" + proxyName + ": no volume mounts the key " +
                                    key + " of Secret " + tlsSecretName;
        QVERIFY2(keys.count(key) != 0, message.c_str());
    }
}

void TestKubernetesManifests::clusterRoleGrantsExactRules()
{
    const YAML::Node role = object("ClusterRole", proxyName);
    const std::string where = "ClusterRole/" + proxyName + ": ";
    QVERIFY2(role.IsDefined(), (where + "is missing").c_str());
    QVERIFY2(
        !child(role, "aggregationRule").IsDefined(),
        (where + "aggregationRule must be unset, because it lets other roles add rules").c_str());

    // Each granted permission as "apiGroup|resource|verb".
    std::set<std::string> granted;
    int index = 0;
    for (const YAML::Node &rule : items(child(role, "rules"))) {
        const std::string ruleWhere = where + "rules[" + std::to_string(index++) + "].";
        QVERIFY2(!child(rule, "nonResourceURLs").IsDefined(),
                 (ruleWhere + "nonResourceURLs must be unset").c_str());
        for (const char *field : {"apiGroups", "resources", "verbs", "resourceNames"}) {
            for (const std::string &value : strings(child(rule, field))) {
                QVERIFY2(
                    value.find('*') == std::string::npos,
                    (ruleWhere + field + " must not contain a wildcard, found " + value).c_str());
            }
        }
        for (const std::string &group : strings(child(rule, "apiGroups"))) {
            for (const std::string &resource : strings(child(rule, "resources"))) {
                for (const std::string &verb : strings(child(rule, "verbs")))
                    granted.insert(group + "|" + resource + "|" + verb);
            }
        }
    }

    const std::set<std::string> expected = {
        "|users|impersonate",
        "|groups|impersonate",
        "authentication.k8s.io|uids|impersonate",
        "authorization.k8s.io|subjectaccessreviews|create",
        "|namespaces|list",
        "|namespaces|watch",
    };
    for (const std::string &permission : expected) {
        QVERIFY2(granted.count(permission) != 0,
                 (where + "rules must grant (apiGroup|resource|verb) " + permission).c_str());
    }
    const QRegularExpression extra(
        QStringLiteral("^authentication\\.k8s\\.io\\|userextras/[^|]+\\|impersonate$"));
    for (const std::string &permission : granted) {
        // An operator may add userextras/<name> for each Impersonate-Extra-<name> header.
        const bool isExtra = extra.match(QString::fromStdString(permission)).hasMatch();
        QVERIFY2(expected.count(permission) != 0 || isExtra,
                 (where + "rules grant (apiGroup|resource|verb) " + permission +
                  ", which the cluster proxy does not need")
                     .c_str());
    }
}

void TestKubernetesManifests::clusterRoleBindingNamesProxy()
{
    const YAML::Node binding = object("ClusterRoleBinding", proxyName);
    const std::string where = "ClusterRoleBinding/" + proxyName + ": ";
    QVERIFY2(scalar(at(binding, {"roleRef", "kind"})) == "ClusterRole",
             (where + "roleRef.kind must be ClusterRole").c_str());
    QVERIFY2(scalar(at(binding, {"roleRef", "name"})) == proxyName,
             (where + "roleRef.name must be " + proxyName).c_str());
    const std::vector<YAML::Node> subjects = items(child(binding, "subjects"));
    QVERIFY2(subjects.size() == 1, (where + "subjects must name exactly one subject").c_str());
    QVERIFY2(scalar(child(subjects[0], "kind")) == "ServiceAccount",
             (where + "subjects[0].kind must be ServiceAccount").c_str());
    QVERIFY2(scalar(child(subjects[0], "name")) == proxyName,
             (where + "subjects[0].name must be " + proxyName).c_str());
    QVERIFY2(scalar(child(subjects[0], "namespace")) == namespaceName,
             (where + "subjects[0].namespace must be " + namespaceName).c_str());
}

void TestKubernetesManifests::certsRoleGrantsExactRules()
{
    const YAML::Node role = object("Role", certsName);
    const std::string where = "Role/" + certsName + ": ";
    QVERIFY2(role.IsDefined(), (where + "is missing").c_str());
    QVERIFY2(scalar(at(role, {"metadata", "namespace"})) == namespaceName,
             (where + "metadata.namespace must be " + namespaceName).c_str());

    // Each granted permission as "apiGroup|resource|verb".
    std::set<std::string> granted;
    int index = 0;
    for (const YAML::Node &rule : items(child(role, "rules"))) {
        const std::string ruleWhere = where + "rules[" + std::to_string(index++) + "].";
        QVERIFY2(!child(rule, "nonResourceURLs").IsDefined(),
                 (ruleWhere + "nonResourceURLs must be unset").c_str());
        for (const char *field : {"apiGroups", "resources", "verbs", "resourceNames"}) {
            for (const std::string &value : strings(child(rule, field))) {
                QVERIFY2(
                    value.find('*') == std::string::npos,
                    (ruleWhere + field + " must not contain a wildcard, found " + value).c_str());
            }
        }
        for (const std::string &group : strings(child(rule, "apiGroups"))) {
            for (const std::string &resource : strings(child(rule, "resources"))) {
                for (const std::string &verb : strings(child(rule, "verbs")))
                    granted.insert(group + "|" + resource + "|" + verb);
            }
        }
    }
    const std::set<std::string> expected = {
        "|secrets|get",
        "|secrets|create",
        "|secrets|update",
        "|pods|list",
        "|pods|delete",
        "|pods|deletecollection",
    };
    for (const std::string &permission : expected) {
        QVERIFY2(granted.count(permission) != 0,
                 (where + "rules must grant (apiGroup|resource|verb) " + permission).c_str());
    }
    for (const std::string &permission : granted) {
        QVERIFY2(expected.count(permission) != 0,
                 (where + "rules grant (apiGroup|resource|verb) " + permission +
                  ", which the certs command does not need")
                     .c_str());
    }
}

void TestKubernetesManifests::certsRoleBindingNamesAccount()
{
    const YAML::Node binding = object("RoleBinding", certsName);
    const std::string where = "RoleBinding/" + certsName + ": ";
    QVERIFY2(binding.IsDefined(), (where + "is missing").c_str());
    QVERIFY2(
        scalar(at(binding, {"roleRef", "kind"})) == "Role",
        (where + "roleRef.kind must be Role, so that the rights stay in one namespace").c_str());
    QVERIFY2(scalar(at(binding, {"roleRef", "name"})) == certsName,
             (where + "roleRef.name must be " + certsName).c_str());
    const std::vector<YAML::Node> subjects = items(child(binding, "subjects"));
    QVERIFY2(subjects.size() == 1, (where + "subjects must name exactly one subject").c_str());
    QVERIFY2(scalar(child(subjects[0], "kind")) == "ServiceAccount",
             (where + "subjects[0].kind must be ServiceAccount").c_str());
    QVERIFY2(scalar(child(subjects[0], "name")) == certsName,
             (where + "subjects[0].name must be " + certsName).c_str());
    QVERIFY2(scalar(child(subjects[0], "namespace")) == namespaceName,
             (where + "subjects[0].namespace must be " + namespaceName).c_str());
}

void TestKubernetesManifests::certsAccountHasNoClusterBinding()
{
    for (const YAML::Node &binding : objectsOfKind("ClusterRoleBinding")) {
        for (const YAML::Node &subject : items(child(binding, "subjects"))) {
            const bool namesCerts = scalar(child(subject, "kind")) == "ServiceAccount" &&
                                    scalar(child(subject, "name")) == certsName;
            QVERIFY2(!namesCerts,
                     ("ClusterRoleBinding/" + name(binding) + ": subjects must not include " +
                      "ServiceAccount " + certsName + ", whose rights are namespaced")
                         .c_str());
        }
    }
    const YAML::Node account = object("ServiceAccount", certsName);
    QVERIFY2(
        boolean(child(account, "automountServiceAccountToken")) == false,
        ("ServiceAccount/" + certsName + ": automountServiceAccountToken must be false").c_str());
}

void TestKubernetesManifests::certsJobRunsOnce()
{
    const YAML::Node cronJob = object("CronJob", certsName);
    const std::string where = "CronJob/" + certsName + ": ";
    QVERIFY2(cronJob.IsDefined(), (where + "is missing").c_str());
    QVERIFY2(scalar(at(cronJob, {"spec", "concurrencyPolicy"})) == "Forbid",
             (where + "spec.concurrencyPolicy must be Forbid, so that two runs never race for "
                      "the same Secret")
                 .c_str());

    const YAML::Node pod = podSpec(certsName);
    const std::string podWhere = where + podSpecPath(certsName);
    QVERIFY2(scalar(child(pod, "serviceAccountName")) == certsName,
             (podWhere + "serviceAccountName must be " + certsName).c_str());
    const std::string restartPolicy = scalar(child(pod, "restartPolicy"));
    QVERIFY2(restartPolicy == "Never" || restartPolicy == "OnFailure",
             (podWhere + "restartPolicy must be Never or OnFailure").c_str());

    const YAML::Node container = first(child(pod, "containers"));
    const std::vector<std::string> args = strings(child(container, "args"));
    QVERIFY2(!args.empty() && args.front() == "certs",
             (podWhere + "containers[0].args must start with the subcommand certs").c_str());
    QVERIFY2(contains(args, "--once"),
             (podWhere + "containers[0].args must contain --once").c_str());
    const auto option = std::find(args.begin(), args.end(), "--config");
    QVERIFY2(option != args.end() && option + 1 != args.end(),
             (podWhere + "containers[0].args must contain --config FILE").c_str());

    // The configuration file and the service account files must be mounted read-only.
    const std::vector<std::string> needed = {
        *(option + 1), serviceAccountFolder + "/token", serviceAccountFolder + "/ca.crt"};
    for (const std::string &file : needed) {
        bool mounted = false;
        for (const YAML::Node &mount : items(child(container, "volumeMounts"))) {
            if (isUnder(file, scalar(child(mount, "mountPath"))) &&
                boolean(child(mount, "readOnly")) == true)
                mounted = true;
        }
        QVERIFY2(mounted,
                 (podWhere + "containers[0] has no read-only volume mount that contains " + file)
                     .c_str());
    }
    bool projectsToken = false;
    for (const YAML::Node &volume : items(child(pod, "volumes"))) {
        for (const YAML::Node &source : items(at(volume, {"projected", "sources"}))) {
            if (scalar(at(source, {"serviceAccountToken", "path"})) == "token")
                projectsToken = true;
        }
    }
    QVERIFY2(projectsToken,
             (podWhere + "volumes must project a serviceAccountToken at the path token").c_str());
}

void TestKubernetesManifests::certsConfigTargetsRoleNamespace()
{
    YAML::Node configMap(YAML::NodeType::Undefined);
    for (const YAML::Node &reference : volumeSources(podSpec(certsName), "configMap")) {
        const std::string referenced = scalar(child(reference, "name"));
        if (referenced.rfind(certsName + "-config", 0) == 0)
            configMap.reset(object("ConfigMap", referenced));
    }
    QVERIFY2(configMap.IsDefined(),
             ("CronJob/" + certsName + " mounts no rendered ConfigMap whose name starts with " +
              certsName + "-config")
                 .c_str());
    const std::string text = scalar(at(configMap, {"data", "config.yaml"}));
    QVERIFY2(!text.empty(),
             ("ConfigMap/" + name(configMap) + ": data[config.yaml] is empty").c_str());

    // The file relies on the in-cluster defaults of api_server, whose files exist only in a pod,
    // so a scratch copy names a CA file of its own.
    QTemporaryDir scratch;
    QVERIFY(scratch.isValid());
    const lamplighter::Result<lamplighter::LocalCertificate> ca =
        lamplighter::LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    QVERIFY2(ca, qPrintable(ca.errorMessage()));
    QFile caFile(scratch.filePath(QStringLiteral("ca.crt")));
    QVERIFY(caFile.open(QIODevice::WriteOnly));
    caFile.write(ca->certificatePem());
    caFile.close();
    QFile configFile(scratch.filePath(QStringLiteral("config.yaml")));
    QVERIFY(configFile.open(QIODevice::WriteOnly));
    configFile.write("api_server:\n  url: https://kubernetes.default.svc\n"
                     "  certificate_authority: ca.crt\n  token_file: token\n");
    configFile.write(QByteArray::fromStdString(text));
    configFile.close();
    const lamplighter::Result<lamplighter::CertificateRotationConfig> config =
        lamplighter::loadCertificateRotationConfig(configFile.fileName());
    QVERIFY2(config, qPrintable(config.errorMessage()));
    QVERIFY2(config->warnings.isEmpty(), qPrintable(config->warnings.join(QLatin1Char('\n'))));
    QVERIFY2(!config->keys.isEmpty(), "the certs configuration has no keys entry");

    const YAML::Node jobPodLabels =
        at(object("CronJob", certsName),
           {"spec", "jobTemplate", "spec", "template", "metadata", "labels"});
    for (const lamplighter::CertificateKey &key : config->keys) {
        const std::string where = "the certs configuration's entry " + key.name.toStdString();
        QVERIFY2(key.targetNamespace.toStdString() == namespaceName,
                 (where + " targets namespace " + key.targetNamespace.toStdString() +
                  ", where Role/" + certsName + " grants nothing")
                     .c_str());
        for (const QString &selector : key.deletePodsSelectors) {
            const QStringList parts = selector.split(QLatin1Char('='));
            YAML::Node matchLabels(YAML::NodeType::Map);
            matchLabels[parts.at(0).toStdString()] = parts.at(1).toStdString();
            bool selectsDeployment = false;
            for (const YAML::Node &deployment : objectsOfKind("Deployment")) {
                if (selects(matchLabels,
                            at(deployment, {"spec", "template", "metadata", "labels"})))
                    selectsDeployment = true;
            }
            QVERIFY2(selectsDeployment,
                     (where + ": delete_pods_labels item " + selector.toStdString() +
                      " matches the pods of no Deployment")
                         .c_str());
            QVERIFY2(!selects(matchLabels, jobPodLabels),
                     (where + ": delete_pods_labels item " + selector.toStdString() +
                      " matches the certs job's own pods")
                         .c_str());
        }
    }
}

void TestKubernetesManifests::headlampServiceAccountUnbound()
{
    // Groups that contain Headlamp's service account: all service accounts, those of its
    // namespace, and all authenticated users.
    const std::set<std::string> groupsWithHeadlamp = {
        "system:serviceaccounts",
        "system:serviceaccounts:" + namespaceName,
        "system:authenticated",
    };
    for (const char *kind : {"RoleBinding", "ClusterRoleBinding"}) {
        for (const YAML::Node &binding : objectsOfKind(kind)) {
            for (const YAML::Node &subject : items(child(binding, "subjects"))) {
                const std::string subjectKind = scalar(child(subject, "kind"));
                const std::string subjectName = scalar(child(subject, "name"));
                std::string subjectNamespace = scalar(child(subject, "namespace"));
                if (subjectNamespace.empty())
                    subjectNamespace = scalar(at(binding, {"metadata", "namespace"}));
                const bool namesHeadlamp = subjectKind == "ServiceAccount" &&
                                           subjectName == headlampName &&
                                           subjectNamespace == namespaceName;
                const bool groupHasHeadlamp =
                    subjectKind == "Group" && groupsWithHeadlamp.count(subjectName) != 0;
                const std::string message = std::string(kind) + "/" + name(binding) +
                                            ": subjects must not include " + subjectKind + " " +
                                            subjectName + ", which covers ServiceAccount " +
                                            namespaceName + "/" + headlampName;
                QVERIFY2(!namesHeadlamp && !groupHasHeadlamp, message.c_str());
            }
        }
    }
    const YAML::Node account = object("ServiceAccount", headlampName);
    QVERIFY2(boolean(child(account, "automountServiceAccountToken")) == false,
             "ServiceAccount/headlamp: automountServiceAccountToken must be false");
}

void TestKubernetesManifests::headlampHoldsNoToken()
{
    const YAML::Node pod = podSpec(headlampName);
    const std::string where = "Deployment/" + headlampName + ": spec.template.spec.";
    QVERIFY2(scalar(child(pod, "serviceAccountName")) == headlampName,
             (where + "serviceAccountName must be " + headlampName).c_str());
    for (const YAML::Node &volume : items(child(pod, "volumes"))) {
        for (const YAML::Node &source : items(at(volume, {"projected", "sources"}))) {
            QVERIFY2(!child(source, "serviceAccountToken").IsDefined(),
                     (where + "volumes[" + scalar(child(volume, "name")) +
                      "] must not project a serviceAccountToken")
                         .c_str());
        }
    }
}

void TestKubernetesManifests::headlampUsesClusterProxy()
{
    const YAML::Node pod = podSpec(headlampName);
    const YAML::Node container = first(child(pod, "containers"));
    const std::string where =
        "Deployment/" + headlampName + ": containers[" + scalar(child(container, "name")) + "].";
    std::map<std::string, std::string> environment;
    for (const YAML::Node &variable : items(child(container, "env")))
        environment[scalar(child(variable, "name"))] = scalar(child(variable, "value"));

    const std::string host = proxyName + "." + namespaceName + ".svc";
    QVERIFY2(environment["KUBERNETES_SERVICE_HOST"] == host,
             (where + "env KUBERNETES_SERVICE_HOST must be " + host).c_str());
    const auto servicePort =
        integer(child(first(at(object("Service", proxyName), {"spec", "ports"})), "port"));
    QVERIFY2(servicePort.has_value(),
             ("Service/" + proxyName + ": spec.ports[0].port is missing").c_str());
    QVERIFY2(environment["KUBERNETES_SERVICE_PORT"] == std::to_string(*servicePort),
             (where + "env KUBERNETES_SERVICE_PORT must be the Service port " +
              std::to_string(*servicePort))
                 .c_str());
    QVERIFY2(contains(strings(child(container, "args")), "-in-cluster"),
             (where + "args must contain -in-cluster").c_str());

    // rest.InClusterConfig reads ca.crt and token from the service account folder.
    std::string folderVolume;
    for (const YAML::Node &mount : items(child(container, "volumeMounts"))) {
        if (scalar(child(mount, "mountPath")) == serviceAccountFolder)
            folderVolume = scalar(child(mount, "name"));
    }
    QVERIFY2(!folderVolume.empty(),
             (where + "volumeMounts must mount a volume at " + serviceAccountFolder).c_str());

    std::set<std::string> files;
    std::string caSecret;
    for (const YAML::Node &volume : items(child(pod, "volumes"))) {
        if (scalar(child(volume, "name")) != folderVolume)
            continue;
        for (const YAML::Node &source : items(at(volume, {"projected", "sources"}))) {
            for (const char *kind : {"secret", "configMap"}) {
                for (const YAML::Node &item : items(at(source, {kind, "items"}))) {
                    const std::string file = scalar(child(item, "path"));
                    files.insert(file);
                    if (file == "ca.crt" && std::string(kind) == "secret")
                        caSecret = scalar(at(source, {kind, "name"}));
                }
            }
        }
    }
    const std::string volumeWhere =
        "Deployment/" + headlampName + ": spec.template.spec.volumes[" + folderVolume + "]";
    for (const char *file : {"ca.crt", "token"}) {
        QVERIFY2(files.count(file) != 0, (volumeWhere + " must provide the file " + file).c_str());
    }
    QVERIFY2(
        caSecret.empty() || caSecret == tlsSecretName,
        (volumeWhere + " takes ca.crt from Secret " + caSecret + " instead of " + tlsSecretName)
            .c_str());
}

void TestKubernetesManifests::servicesRouteToPods_data()
{
    QTest::addColumn<QByteArray>("service");
    QTest::addColumn<int>("port");
    QTest::addColumn<int>("targetPort");
    QTest::newRow("cluster proxy") << QByteArray(proxyName.c_str()) << 443 << 8443;
    QTest::newRow("headlamp") << QByteArray(headlampName.c_str()) << 80 << 4466;
}

void TestKubernetesManifests::servicesRouteToPods()
{
    QFETCH(QByteArray, service);
    QFETCH(int, port);
    QFETCH(int, targetPort);
    const std::string serviceName = service.toStdString();
    const YAML::Node spec = child(object("Service", serviceName), "spec");
    const YAML::Node podTemplate = at(object("Deployment", serviceName), {"spec", "template"});
    const std::string where = "Service/" + serviceName + ": spec.";

    const std::string type = scalar(child(spec, "type"));
    QVERIFY2(type.empty() || type == "ClusterIP", (where + "type must be ClusterIP").c_str());
    QVERIFY2(selects(child(spec, "selector"), at(podTemplate, {"metadata", "labels"})),
             (where + "selector must match the pods of Deployment/" + serviceName).c_str());
    const std::vector<YAML::Node> ports = items(child(spec, "ports"));
    QVERIFY2(ports.size() == 1, (where + "ports must list exactly one port").c_str());
    QVERIFY2(integer(child(ports[0], "port")) == port,
             (where + "ports[0].port must be " + std::to_string(port)).c_str());
    const YAML::Node container = first(at(podTemplate, {"spec", "containers"}));
    QVERIFY2(
        containerPort(container, child(ports[0], "targetPort")) == targetPort,
        (where + "ports[0].targetPort must lead to container port " + std::to_string(targetPort))
            .c_str());
}

void TestKubernetesManifests::disruptionBudgetSelectsProxy()
{
    const YAML::Node budget = object("PodDisruptionBudget", proxyName);
    const YAML::Node podLabels =
        at(object("Deployment", proxyName), {"spec", "template", "metadata", "labels"});
    QVERIFY2(selects(at(budget, {"spec", "selector", "matchLabels"}), podLabels),
             "PodDisruptionBudget/lamplighter-cluster-proxy: spec.selector must match the pods "
             "of Deployment/lamplighter-cluster-proxy");
    QVERIFY2(integer(at(budget, {"spec", "minAvailable"})) == 1,
             "PodDisruptionBudget/lamplighter-cluster-proxy: spec.minAvailable must be 1");
}

void TestKubernetesManifests::clusterProxyConfigHasKeys()
{
    const YAML::Node configMap = generatedConfigMap();
    QVERIFY2(configMap.IsDefined(), "the cluster proxy's ConfigMap is missing");
    const std::string where = "ConfigMap/" + name(configMap) + ": data[config.yaml]";
    const std::string text = scalar(at(configMap, {"data", "config.yaml"}));
    QVERIFY2(!text.empty(), (where + " is missing or empty").c_str());

    YAML::Node config;
    try {
        config.reset(YAML::Load(text));
    } catch (const YAML::Exception &error) {
        QFAIL((where + " is not valid YAML: " + error.what()).c_str());
    }
    QVERIFY2(config.IsMap(), (where + " must be a YAML mapping").c_str());

    enum class Shape { Value, List, Mapping };
    const std::vector<std::pair<std::vector<std::string>, Shape>> keys = {
        {{"listen"}, Shape::Value},
        {{"tls", "certificate"}, Shape::Value},
        {{"tls", "key"}, Shape::Value},
        {{"issuer", "url"}, Shape::Value},
        {{"issuer", "client_id"}, Shape::Value},
        {{"issuer", "audiences"}, Shape::List},
        {{"issuer", "allowed_algorithms"}, Shape::List},
        {{"issuer", "required_claims"}, Shape::Mapping},
        {{"claims", "username"}, Shape::Value},
        {{"claims", "username_prefix"}, Shape::Value},
        {{"claims", "groups"}, Shape::Value},
        {{"claims", "groups_prefix"}, Shape::Value},
        {{"allowed_groups"}, Shape::List},
        {{"api_server", "url"}, Shape::Value},
        {{"api_server", "certificate_authority"}, Shape::Value},
        {{"api_server", "token_file"}, Shape::Value},
        {{"namespaces", "mode"}, Shape::Value},
        {{"namespaces", "verb"}, Shape::Value},
        {{"namespaces", "resource"}, Shape::Value},
        {{"namespaces", "admin_groups"}, Shape::List},
    };
    for (const auto &[path, shape] : keys) {
        YAML::Node node = config;
        std::string dotted;
        for (const std::string &key : path) {
            node.reset(child(node, key));
            dotted += (dotted.empty() ? "" : ".") + key;
        }
        const bool matches = (shape == Shape::Value && node.IsDefined() && node.IsScalar()) ||
                             (shape == Shape::List && node.IsDefined() && node.IsSequence()) ||
                             (shape == Shape::Mapping && node.IsDefined() && node.IsMap());
        const char *expected = shape == Shape::Value  ? "a value"
                               : shape == Shape::List ? "a list"
                                                      : "a mapping";
        QVERIFY2(matches, (where + ": " + dotted + " must be " + expected).c_str());
    }

    const std::set<std::string> modes = {"all", "test", "service", "none"};
    const std::string mode = scalar(at(config, {"namespaces", "mode"}));
    QVERIFY2(modes.count(mode) != 0,
             (where + ": namespaces.mode must be all, test, service or none, not " + mode).c_str());
    for (const std::string &algorithm : strings(at(config, {"issuer", "allowed_algorithms"}))) {
        const bool asymmetric = algorithm.rfind("RS", 0) == 0 || algorithm.rfind("PS", 0) == 0 ||
                                algorithm.rfind("ES", 0) == 0 || algorithm == "EdDSA";
        QVERIFY2(asymmetric,
                 (where + ": issuer.allowed_algorithms must list only asymmetric algorithms, not " +
                  algorithm)
                     .c_str());
    }
}

void TestKubernetesManifests::clusterProxyConfigPathsMounted()
{
    const YAML::Node container = first(child(podSpec(proxyName), "containers"));
    const std::string where =
        "Deployment/" + proxyName + ": containers[" + scalar(child(container, "name")) + "]";
    std::vector<std::string> readOnlyMounts;
    for (const YAML::Node &mount : items(child(container, "volumeMounts"))) {
        if (boolean(child(mount, "readOnly")) == true)
            readOnlyMounts.push_back(scalar(child(mount, "mountPath")));
    }
    const auto isMounted = [&readOnlyMounts](const std::string &path) {
        return std::any_of(readOnlyMounts.begin(),
                           readOnlyMounts.end(),
                           [&path](const std::string &folder) { return isUnder(path, folder); });
    };

    const std::vector<std::string> args = strings(child(container, "args"));
    const auto option = std::find(args.begin(), args.end(), "--config");
    QVERIFY2(option != args.end() && option + 1 != args.end(),
             (where + ".args must contain --config FILE").c_str());
    const std::string configPath = *(option + 1);
    QVERIFY2(
        configPath == "/etc/lamplighter-cluster-proxy/config.yaml",
        (where + ".args must pass --config /etc/lamplighter-cluster-proxy/config.yaml").c_str());
    QVERIFY2(isMounted(configPath),
             (where + " has no read-only volume mount that contains " + configPath).c_str());

    YAML::Node config;
    try {
        config.reset(YAML::Load(scalar(at(generatedConfigMap(), {"data", "config.yaml"}))));
    } catch (const YAML::Exception &error) {
        QFAIL((std::string("the cluster proxy's config.yaml is not valid YAML: ") + error.what())
                  .c_str());
    }
    const std::vector<std::pair<std::string, std::string>> files = {
        {"tls.certificate", scalar(at(config, {"tls", "certificate"}))},
        {"tls.key", scalar(at(config, {"tls", "key"}))},
        {"api_server.certificate_authority",
         scalar(at(config, {"api_server", "certificate_authority"}))},
        {"api_server.token_file", scalar(at(config, {"api_server", "token_file"}))},
    };
    for (const auto &[key, path] : files) {
        QVERIFY2(isMounted(path),
                 (where + " has no read-only volume mount that contains " + path +
                  ", the configuration's " + key)
                     .c_str());
    }
}

void TestKubernetesManifests::containerfileUserMatchesDeployment()
{
    const QString path = packagingDir() + QStringLiteral("/container/Containerfile");
    QFile file(path);
    QVERIFY2(file.open(QIODevice::ReadOnly), qPrintable(path + QStringLiteral(" not found")));
    const QString text = QString::fromUtf8(file.readAll());

    // The last USER instruction sets the user that the image runs as.
    const QRegularExpression userLine(QStringLiteral("^USER\\s+(\\d+):(\\d+)\\s*$"),
                                      QRegularExpression::MultilineOption);
    QRegularExpressionMatch last;
    for (auto matches = userLine.globalMatch(text); matches.hasNext();)
        last = matches.next();
    QVERIFY2(last.hasMatch(),
             qPrintable(path + QStringLiteral(" must set USER uid:gid in numbers, so that "
                                              "runAsNonRoot can check it")));

    const YAML::Node context = child(podSpec(proxyName), "securityContext");
    const auto user = integer(child(context, "runAsUser"));
    const auto group = integer(child(context, "runAsGroup"));
    QVERIFY2(user && QString::number(*user) == last.captured(1),
             qPrintable(QStringLiteral("%1: USER uid %2 differs from runAsUser of "
                                       "Deployment/lamplighter-cluster-proxy")
                            .arg(path, last.captured(1))));
    QVERIFY2(group && QString::number(*group) == last.captured(2),
             qPrintable(QStringLiteral("%1: USER gid %2 differs from runAsGroup of "
                                       "Deployment/lamplighter-cluster-proxy")
                            .arg(path, last.captured(2))));
}

void TestKubernetesManifests::exampleIngressRoutesToProxy()
{
    const QString path = packagingDir() + QStringLiteral("/kubernetes/examples/ingress.yaml");
    std::string error;
    const YAML::Node ingress = loadFile(path, &error);
    QVERIFY2(error.empty(), error.c_str());
    const std::string where = path.toStdString() + ": ";
    QVERIFY2(scalar(child(ingress, "kind")) == "Ingress", (where + "kind must be Ingress").c_str());
    QVERIFY2(scalar(at(ingress, {"metadata", "namespace"})) == namespaceName,
             (where + "metadata.namespace must be " + namespaceName).c_str());

    const YAML::Node rule = first(at(ingress, {"spec", "rules"}));
    const YAML::Node backend = at(first(at(rule, {"http", "paths"})), {"backend", "service"});
    QVERIFY2(
        scalar(child(backend, "name")) == proxyName,
        (where + "spec.rules[0].http.paths[0].backend.service.name must be " + proxyName).c_str());
    const YAML::Node servicePort = first(at(object("Service", proxyName), {"spec", "ports"}));
    const std::string portName = scalar(at(backend, {"port", "name"}));
    const std::string portNumber = scalar(at(backend, {"port", "number"}));
    const bool portMatches =
        (!portName.empty() && portName == scalar(child(servicePort, "name"))) ||
        (!portNumber.empty() && portNumber == scalar(child(servicePort, "port")));
    QVERIFY2(portMatches,
             (where +
              "spec.rules[0].http.paths[0].backend.service.port must name the port of "
              "Service/" +
              proxyName)
                 .c_str());
}

void TestKubernetesManifests::exampleNetworkPolicyAdmitsHeadlamp()
{
    const QString path =
        packagingDir() + QStringLiteral("/kubernetes/examples/network-policy.yaml");
    std::string error;
    const YAML::Node policy = loadFile(path, &error);
    QVERIFY2(error.empty(), error.c_str());
    const std::string where = path.toStdString() + ": ";
    QVERIFY2(scalar(child(policy, "kind")) == "NetworkPolicy",
             (where + "kind must be NetworkPolicy").c_str());
    QVERIFY2(scalar(at(policy, {"metadata", "namespace"})) == namespaceName,
             (where + "metadata.namespace must be " + namespaceName).c_str());

    const YAML::Node proxyLabels =
        at(object("Deployment", proxyName), {"spec", "template", "metadata", "labels"});
    QVERIFY2(selects(at(policy, {"spec", "podSelector", "matchLabels"}), proxyLabels),
             (where + "spec.podSelector must match the pods of Deployment/" + proxyName).c_str());

    const YAML::Node headlampLabels =
        at(object("Deployment", headlampName), {"spec", "template", "metadata", "labels"});
    bool admitsHeadlamp = false;
    bool allowsProxyPort = false;
    for (const YAML::Node &rule : items(at(policy, {"spec", "ingress"}))) {
        for (const YAML::Node &peer : items(child(rule, "from"))) {
            // A peer with only a podSelector means pods of the policy's own namespace.
            if (!child(peer, "namespaceSelector").IsDefined() &&
                selects(at(peer, {"podSelector", "matchLabels"}), headlampLabels)) {
                admitsHeadlamp = true;
            }
        }
        for (const YAML::Node &port : items(child(rule, "ports"))) {
            if (integer(child(port, "port")) == 8443)
                allowsProxyPort = true;
        }
    }
    QVERIFY2(admitsHeadlamp,
             (where + "spec.ingress must admit the pods of Deployment/" + headlampName).c_str());
    QVERIFY2(allowsProxyPort, (where + "spec.ingress must allow port 8443").c_str());
}

namespace {

// The plugins folder of the Headlamp Deployment: the value of Headlamp's -plugins-dir flag, the
// emptyDir mounted there, and the ConfigMap of the plugin list. Empty fields when missing.
struct HeadlampPluginWiring {
    std::string folder;
    std::string volume;
    std::string listConfigMap;
};

HeadlampPluginWiring headlampPluginWiring(const YAML::Node &pod)
{
    HeadlampPluginWiring wiring;
    const YAML::Node headlamp = first(child(pod, "containers"));
    const std::string flag = "-plugins-dir=";
    for (const std::string &argument : strings(child(headlamp, "args"))) {
        if (argument.rfind(flag, 0) == 0)
            wiring.folder = argument.substr(flag.size());
    }
    for (const YAML::Node &mount : items(child(headlamp, "volumeMounts"))) {
        if (!wiring.folder.empty() && scalar(child(mount, "mountPath")) == wiring.folder)
            wiring.volume = scalar(child(mount, "name"));
    }
    for (const YAML::Node &volume : items(child(pod, "volumes"))) {
        const std::string referenced = scalar(at(volume, {"configMap", "name"}));
        if (referenced.rfind("headlamp-plugins", 0) == 0)
            wiring.listConfigMap = referenced;
    }
    return wiring;
}

} // namespace

void TestKubernetesManifests::headlampPluginsFromInitContainers()
{
    const YAML::Node pod = podSpec(headlampName);
    const std::string where = "Deployment/" + headlampName + ": spec.template.spec.";
    const HeadlampPluginWiring wiring = headlampPluginWiring(pod);
    QVERIFY2(!wiring.folder.empty(),
             (where + "containers[0].args must contain -plugins-dir=FOLDER").c_str());
    QVERIFY2(!wiring.volume.empty(),
             (where + "containers[0] must mount a volume at " + wiring.folder).c_str());

    bool isEmptyDir = false;
    for (const YAML::Node &volume : items(child(pod, "volumes"))) {
        if (scalar(child(volume, "name")) == wiring.volume)
            isEmptyDir = child(volume, "emptyDir").IsDefined();
    }
    QVERIFY2(isEmptyDir, (where + "volumes[" + wiring.volume + "] must be an emptyDir").c_str());
    for (const YAML::Node &mount : items(child(first(child(pod, "containers")), "volumeMounts"))) {
        if (scalar(child(mount, "name")) == wiring.volume) {
            QVERIFY2(boolean(child(mount, "readOnly")) == true,
                     (where + "containers[0].volumeMounts[" + wiring.volume +
                      "].readOnly must be true, because only the init containers write plugins")
                         .c_str());
        }
    }

    // pluginctl removes every folder that its list does not name, so it must run before the
    // container that copies Lamplighter's plugin.
    std::vector<std::string> names;
    for (const YAML::Node &container : items(child(pod, "initContainers")))
        names.push_back(scalar(child(container, "name")));
    const std::vector<std::string> expected = {"install-plugins", "lamplighter-plugin"};
    QVERIFY2(names == expected,
             (where + "initContainers must be install-plugins, then lamplighter-plugin").c_str());

    for (const YAML::Node &container : items(child(pod, "initContainers"))) {
        const std::string path = where + "initContainers[" + scalar(child(container, "name")) + "]";
        bool mountsPlugins = false;
        for (const YAML::Node &mount : items(child(container, "volumeMounts"))) {
            if (scalar(child(mount, "name")) == wiring.volume &&
                scalar(child(mount, "mountPath")) == wiring.folder)
                mountsPlugins = boolean(child(mount, "readOnly")) != true;
        }
        QVERIFY2(mountsPlugins,
                 (path + " must mount volume " + wiring.volume + " writable at " + wiring.folder)
                     .c_str());
    }
    std::string copyScript;
    for (const std::string &part :
         strings(child(items(child(pod, "initContainers")).back(), "args")))
        copyScript += part;
    QVERIFY2(copyScript.find(wiring.folder + "/lamplighter") != std::string::npos,
             (where + "initContainers[lamplighter-plugin].args must copy into " + wiring.folder +
              "/lamplighter")
                 .c_str());

    const YAML::Node installer = first(child(pod, "initContainers"));
    std::string listVolume;
    for (const YAML::Node &mount : items(child(installer, "volumeMounts"))) {
        if (scalar(child(mount, "mountPath")) == "/config") {
            listVolume = scalar(child(mount, "name"));
            QVERIFY2(
                boolean(child(mount, "readOnly")) == true,
                (where + "initContainers[install-plugins] must mount /config read-only").c_str());
        }
    }
    bool listFromConfigMap = false;
    for (const YAML::Node &volume : items(child(pod, "volumes"))) {
        if (scalar(child(volume, "name")) == listVolume)
            listFromConfigMap = scalar(at(volume, {"configMap", "name"})) == wiring.listConfigMap;
    }
    QVERIFY2(!wiring.listConfigMap.empty() && listFromConfigMap,
             (where + "initContainers[install-plugins] must mount the ConfigMap headlamp-plugins "
                      "at /config")
                 .c_str());
    QVERIFY2(
        object("ConfigMap", wiring.listConfigMap).IsDefined(),
        ("ConfigMap/" + wiring.listConfigMap + " is missing from the rendered output").c_str());
    std::string script;
    for (const std::string &part : strings(child(installer, "args")))
        script += part;
    const std::string configOption = "--config /config/plugins.yaml";
    const std::string folderOption = "--folderName " + wiring.folder;
    QVERIFY2(script.find(configOption) != std::string::npos,
             (where + "initContainers[install-plugins].args must pass " + configOption).c_str());
    QVERIFY2(script.find(folderOption) != std::string::npos,
             (where + "initContainers[install-plugins].args must pass " + folderOption).c_str());
}

void TestKubernetesManifests::headlampPluginInstallersRunAsHeadlamp()
{
    // containerSecurityContext checks the hardening of every container, init containers
    // included. This checks that there are init containers to check, and that they write files
    // as the user that Headlamp reads them as.
    const YAML::Node pod = podSpec(headlampName);
    const YAML::Node headlamp = first(child(pod, "containers"));
    const auto headlampUser = integer(effectiveField(pod, headlamp, "runAsUser"));
    const auto headlampGroup = integer(effectiveField(pod, headlamp, "runAsGroup"));
    const std::vector<YAML::Node> initContainers = items(child(pod, "initContainers"));
    QVERIFY2(!initContainers.empty(),
             ("Deployment/" + headlampName + " has no init containers").c_str());
    for (const YAML::Node &container : initContainers) {
        const std::string where = "Deployment/" + headlampName + ": initContainers[" +
                                  scalar(child(container, "name")) + "].securityContext.";
        QVERIFY2(integer(effectiveField(pod, container, "runAsUser")) == headlampUser,
                 (where + "runAsUser, or the pod's, must be Headlamp's").c_str());
        QVERIFY2(integer(effectiveField(pod, container, "runAsGroup")) == headlampGroup,
                 (where + "runAsGroup, or the pod's, must be Headlamp's").c_str());
    }
}

void TestKubernetesManifests::headlampPluginListHasChartShape()
{
    const std::string configMap = headlampPluginWiring(podSpec(headlampName)).listConfigMap;
    const std::string where = "ConfigMap/" + configMap + ": data[plugins.yaml]";
    const std::string text = scalar(at(object("ConfigMap", configMap), {"data", "plugins.yaml"}));
    QVERIFY2(!text.empty(), (where + " is missing or empty").c_str());
    YAML::Node list;
    try {
        list = YAML::Load(text);
    } catch (const YAML::Exception &error) {
        QFAIL((where + " is not valid YAML: " + error.what()).c_str());
    }
    const YAML::Node plugins = child(list, "plugins");
    QVERIFY2(plugins.IsSequence(), (where + ": plugins must be a list").c_str());

    // The patterns of @headlamp-k8s/pluginctl 0.1.1, which rejects the whole list otherwise.
    const QRegularExpression namePattern(QStringLiteral("^[a-z0-9][a-z0-9-_]*[a-z0-9-]$"));
    const QRegularExpression sourcePattern(
        QStringLiteral("^https://artifacthub\\.io/packages/\\S+$"));
    const QRegularExpression versionPattern(QStringLiteral("^\\d+\\.\\d+\\.\\d+"));
    std::set<std::string> names;
    for (const YAML::Node &plugin : items(plugins)) {
        const std::string pluginName = scalar(child(plugin, "name"));
        const std::string entry = where + ": plugins[" + pluginName + "]";
        QVERIFY2(namePattern.match(QString::fromStdString(pluginName)).hasMatch(),
                 (entry + ".name must be lowercase letters, digits, - and _").c_str());
        QVERIFY2(names.insert(pluginName).second, (entry + " is listed twice").c_str());
        QVERIFY2(
            sourcePattern.match(QString::fromStdString(scalar(child(plugin, "source")))).hasMatch(),
            (entry + ".source must be an https://artifacthub.io/packages/ URL").c_str());
        if (child(plugin, "version").IsDefined()) {
            QVERIFY2(versionPattern.match(QString::fromStdString(scalar(child(plugin, "version"))))
                         .hasMatch(),
                     (entry + ".version must be a semantic version").c_str());
        }
        QVERIFY2(pluginName != "lamplighter",
                 (entry + " would be replaced by the init container lamplighter-plugin").c_str());
    }
}

QTEST_GUILESS_MAIN(TestKubernetesManifests)
#include "tst_kubernetesmanifests.moc"
