"""A strict local Cognito over moto: quotas, latency and validation like the real service.

Import the modules you need (`strict`, `inprocess`, `server`, `seed`); importing this
package has no side effects and does not import moto.
"""
