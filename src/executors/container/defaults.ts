/** Constants of the container executor that the CLI needs without loading dockerode. */
export const DEFAULT_CONTAINER_IMAGE = 'localhost/busybox:latest';
export const DOCKER_SOCKET = '/var/run/docker.sock';
export const PODMAN_SOCKET = '/run/podman/podman.sock';
