#pragma once

#include <memory>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509v3.h>

namespace lamplighter {

// Frees an OpenSSL object with its own free function, for std::unique_ptr.
template <auto FreeFunction>
struct OpenSslDeleter {
    template <typename T>
    void operator()(T *object) const
    {
        FreeFunction(object);
    }
};

// Owning pointers to the OpenSSL objects Lamplighter creates.
using BioPointer = std::unique_ptr<BIO, OpenSslDeleter<BIO_free_all>>;
using BignumPointer = std::unique_ptr<BIGNUM, OpenSslDeleter<BN_free>>;
using KeyPointer = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY_free>>;
using KeyContextPointer = std::unique_ptr<EVP_PKEY_CTX, OpenSslDeleter<EVP_PKEY_CTX_free>>;
using DigestContextPointer = std::unique_ptr<EVP_MD_CTX, OpenSslDeleter<EVP_MD_CTX_free>>;
using EcdsaSignaturePointer = std::unique_ptr<ECDSA_SIG, OpenSslDeleter<ECDSA_SIG_free>>;
using ParamBuilderPointer = std::unique_ptr<OSSL_PARAM_BLD, OpenSslDeleter<OSSL_PARAM_BLD_free>>;
using ParamsPointer = std::unique_ptr<OSSL_PARAM, OpenSslDeleter<OSSL_PARAM_free>>;
using X509Pointer = std::unique_ptr<X509, OpenSslDeleter<X509_free>>;
using X509ExtensionPointer = std::unique_ptr<X509_EXTENSION, OpenSslDeleter<X509_EXTENSION_free>>;
using X509StorePointer = std::unique_ptr<X509_STORE, OpenSslDeleter<X509_STORE_free>>;
using X509StoreContextPointer =
    std::unique_ptr<X509_STORE_CTX, OpenSslDeleter<X509_STORE_CTX_free>>;

} // namespace lamplighter
