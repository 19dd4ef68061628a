#!/bin/sh
# Runs inside the debootstrapped tree (chroot), as root, before `docker import`.
# Everything that must hold in *every* workspace image is done here, once.
set -eu

# The workspace user. uid/gid 1000 is part of the image contract: the spawner
# runs containers with --user 1000 and the hub creates work folders owned by it.
groupadd --gid 1000 researcher
useradd --uid 1000 --gid 1000 --home-dir /home/researcher --create-home \
    --shell /bin/bash researcher

# Mount points: the spawner mounts the project's data read-only at /data, the
# project folder at /project and the user's persistent folder at ~/work. The
# symlinks let the file browser (rooted at the home folder) reach all three.
mkdir -p /data /project /home/researcher/work
ln -s /data /home/researcher/data
ln -s /project /home/researcher/project
chown -h researcher:researcher /home/researcher /home/researcher/work \
    /home/researcher/data /home/researcher/project

# Code running as the researcher must not be able to regain privileges: no
# setuid/setgid programs at all (su, passwd, mount, chsh, ... are not needed in
# a container whose only process is the Jupyter server).
find / -xdev -type f -perm /6000 -exec chmod ug-s {} +

# Keep later package installs (in child images) lean too, and drop what
# debootstrap left behind. Copyright files stay.
cat > /etc/dpkg/dpkg.cfg.d/cleanroom-slim <<'CFG'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
CFG
find /usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
find /usr/share/doc -mindepth 1 -type d -empty -delete
rm -rf /usr/share/man/* /usr/share/info/* /var/cache/debconf/*-old
find /usr/share/locale -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
apt-get clean
rm -rf /var/lib/apt/lists/* /var/log/*.log /var/log/apt/* /tmp/* /var/tmp/*
# debootstrap copies the build host's resolver configuration; Docker provides
# its own at run time.
rm -f /etc/resolv.conf /etc/hostname
