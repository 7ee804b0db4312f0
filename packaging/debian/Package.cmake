# The Debian package of the desktop side: `cpack -G DEB` in a build directory configured with
# -DCMAKE_INSTALL_PREFIX=/usr makes lamplighter_<version>_<arch>.deb, with its configuration
# files in /etc. Included from the top-level CMakeLists.txt.

# Man pages made from each program's --help and --version by help2man, compressed as Debian
# policy asks. HOME=~ makes the help text name ~/.config rather than the build user's home.
find_program(HELP2MAN help2man)
if(HELP2MAN)
    set(man_pages)
    set(summary_lamplighter "sign in to Kubernetes with OpenID Connect from the system tray")
    set(summary_lamplighter-cluster-proxy
        "verify ID tokens and forward requests to the API server through impersonation")
    foreach(program lamplighter lamplighter-cluster-proxy)
        set(page ${CMAKE_CURRENT_BINARY_DIR}/man/${program}.1.gz)
        add_custom_command(
            OUTPUT ${page}
            COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/man
            COMMAND env -u XDG_CONFIG_HOME -u LAMPLIGHTER_CONFIG HOME=~
                    PATH=$<TARGET_FILE_DIR:${program}>:/usr/bin:/bin
                    ${HELP2MAN} --no-info --no-discard-stderr --name ${summary_${program}} ${program}
                    | gzip -9n > ${page}
            DEPENDS ${program}
            COMMENT "Writing the man page of ${program}"
            VERBATIM)
        list(APPEND man_pages ${page})
    endforeach()
    add_custom_target(man_pages ALL DEPENDS ${man_pages})
    install(FILES ${man_pages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()
if(NOT HELP2MAN)
    message(STATUS "help2man not found (Debian: help2man), so the package has no man pages")
endif()

install(FILES ${CMAKE_SOURCE_DIR}/packaging/debian/config.yaml
        DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/xdg/lamplighter)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME lamplighter)
set(CPACK_PACKAGE_VENDOR "The Lamplighter developers")
set(CPACK_PACKAGE_CONTACT "The Lamplighter developers <lamplighter@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Kubernetes and Headlamp sign-in with OpenID Connect, from the system tray")
set(CPACK_PACKAGE_DESCRIPTION
    "Lamplighter signs you in with OpenID Connect in the system browser, keeps the tokens in\n\
the keychain, and serves kubectl, Headlamp desktop and an in-cluster Headlamp through a\n\
local proxy that adds your identity. lamplighter-cluster-proxy is the in-cluster part for\n\
clusters without OpenID Connect.")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
# dpkg-shlibdeps names the packages of the linked libraries. The rest is loaded at run time: the
# xcb platform plugin and the keychain service. The tray icons are rendered while building, so
# Qt's SVG plugin is needed only there.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "qt6-qpa-plugins")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "gnome-keyring | kwalletmanager, xdg-utils")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "kubectl")
# The files under /etc are conffiles, so an upgrade keeps an administrator's edits.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_SOURCE_DIR}/packaging/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
include(CPack)
