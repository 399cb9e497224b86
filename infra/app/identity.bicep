// The one user-assigned managed identity of the function app. It reaches storage, Key Vault, Application
// Insights and (optionally) the Durable Task Scheduler through role assignments, and it is the federated
// credential of the multi-tenant Graph app registration, so no secret is needed anywhere.

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region of the identity.')
param location string

@description('Tags applied to the identity.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
