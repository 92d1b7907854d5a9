#!/usr/bin/env node
// Launcher for `npx pointpool …`: registers tsx (a runtime dependency) so Node can load the
// TypeScript sources directly, then runs the CLI.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
