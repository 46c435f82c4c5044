import { z } from 'zod';

/** `app` and `node` become the slug and a path component: keep them to a safe alphabet (DESIGN §1). */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

const name = (field: string) =>
  z
    .string({ error: (issue) => (issue.input === undefined ? `${field} is required` : `${field} must be a string`) })
    .regex(NAME_PATTERN, { message: `${field} must match ${NAME_PATTERN.source}` })
    .refine((value) => !value.includes('..'), { message: `${field} must not contain '..'` });

const requiredString = (field: string) =>
  z
    .string({ error: (issue) => (issue.input === undefined ? `${field} is required` : `${field} must be a string`) })
    .min(1, { message: `${field} must not be empty` });

export const RESTART_POLICIES = ['always', 'on-failure', 'never'] as const;

export const CreateRequestSchema = z.strictObject(
  {
    app: name('app'),
    node: name('node'),
    process_type: requiredString('process_type'),
    source_url: requiredString('source_url'),
    env: z.record(z.string(), z.string({ error: 'env values must be strings' })).optional(),
    restart: z.enum(RESTART_POLICIES).optional(),
    executor: requiredString('executor').optional(),
    image: requiredString('image').optional(),
    resources: z
      .strictObject({
        cpus: z.number().positive().optional(),
        memory_mb: z.number().int().positive().optional(),
      })
      .optional(),
    region: requiredString('region').optional(),
    volume: requiredString('volume').optional(),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? `unknown field(s): ${issue.keys.join(', ')}` : undefined) },
);

export type CreateRequest = z.infer<typeof CreateRequestSchema>;
export type RestartPolicy = (typeof RESTART_POLICIES)[number];

export function slugOf(request: Pick<CreateRequest, 'app' | 'node'>): string {
  return `${request.app}.${request.node}`;
}
