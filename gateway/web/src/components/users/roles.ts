// The roles and API scopes an admin can hand out (gateway/auth.py ROLES and ROLE_SCOPES).
export const ROLES = ['viewer', 'operator', 'admin']

export const SCOPES = [
  'alarms:read',
  'alarms:write',
  'cameras:read',
  'cameras:write',
  'models:read',
  'models:write',
  'stats:read',
  'metrics:read',
  'samples:read',
  'samples:write',
  'users:read',
  'users:write',
  'uplink:read',
  'uplink:write',
]

export const MIN_PASSWORD = 10
