import { defineConformanceSuite } from './conformance/suite.js';

// The reference executor: children are local process groups (docs/executors.md).
defineConformanceSuite('local', ['--executor', 'local'], {});
