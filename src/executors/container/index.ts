export {
  ContainerExecutor,
  containerNameFor,
  DEFAULT_CONTAINER_IMAGE,
  LABEL_AGENT,
  LABEL_APP,
  LABEL_PROCESS_TYPE,
  LABEL_SLUG,
  type ContainerExecutorOptions,
  type EngineFacts,
} from './container-executor.js';
export { ContainerChild } from './container-child.js';
export {
  DOCKER_SOCKET,
  PODMAN_SOCKET,
  describeAddress,
  engineError,
  parseEngineAddress,
  resolveEngineAddress,
  type EngineAddress,
} from './engine.js';
